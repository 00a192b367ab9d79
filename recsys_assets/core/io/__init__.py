"""Reading and writing by URI: storage, one codec per format, and the artifact catalogue."""
