"""The catalogue family: raw Amazon dumps parsed, staged into items and monthly interactions, and checked."""
