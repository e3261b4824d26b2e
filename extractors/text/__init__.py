"""text extractors (one module per family)."""
