"""The graphs family: the interaction split, node maps, user-item and item-item edges, and their QA."""
