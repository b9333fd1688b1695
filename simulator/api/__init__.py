"""The HTTP layer: one module per device API, shared auth, errors and rendering."""
