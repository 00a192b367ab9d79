"""Online experiments: who sees which serving version (assignment), and the report that decides them."""
