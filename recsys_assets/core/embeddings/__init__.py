"""Item embeddings: text (MiniLM), images (CLIP / EfficientNet-Lite0), and their fusion."""
