"""Request and response bodies (msgspec), one module per domain of the API: validated on the way
in, unknown fields refused."""
