"""Serving versions: the item index, the files the API loads, and the manifest that publishes them."""
