"""Feature extractors behind a registry (text, audio, visual); added by the extraction issue (#3)."""
