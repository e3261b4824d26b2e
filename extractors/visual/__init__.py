"""visual extractors (one module per family)."""
