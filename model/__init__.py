"""AMB-DSGDN (arXiv 2603.10043); added by the model issue (#4)."""
