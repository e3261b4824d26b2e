"""audio extractors (one module per family)."""
