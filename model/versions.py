"""The one record of library versions that every artifact's provenance carries (a model folder's
``provenance.json``, a fine-tuned encoder's ``finetune.json``)."""
from __future__ import annotations

import platform
from importlib import metadata

BASE = ("torch", "numpy", "scikit-learn")


def library_versions(*extra: str) -> dict[str, str]:
    """Python and the installed versions of :data:`BASE` plus ``extra`` distributions (torch's
    local build tag such as ``+cu130`` dropped)."""
    return {"python": platform.python_version(),
            **{name: metadata.version(name).split("+")[0] for name in (*BASE, *extra)}}
