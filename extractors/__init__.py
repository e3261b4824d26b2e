"""Feature extractors behind a registry, one module per extractor family.

Adding an extractor = one module in ``extractors/<modality>/`` with an
:class:`~extractors.base.Extractor` subclass + one ``EXTRACTORS.register`` line below. ``params.yaml``
picks one per modality with ``extract.<modality>.name``; each family's params sit under its own
name (``extract.audio.opensmile``, ``extract.audio.librosa``): see :func:`section_params`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

# Media decoding runs in a thread beside the model. With OpenMP's default busy-waiting, torch's
# worker threads spin on the core the decoder needs; passive waiting measured +20% end-to-end
# visual throughput on 2 cores (benchmarks/extract_speed.py). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from config.registry import Registry
from config.vocabulary import DEFAULT_DEVICE, DEFAULT_PRECISION, MODALITIES
from extractors.base import Extractor, ExtractorError, code_digest

# name -> "module:Class", imported on first use (torch / transformers load only when chosen).
# A family in a modality's folder (extractors/<modality>/) serves that modality; one at the top of
# extractors/ serves every modality (see families()).
EXTRACTORS: Registry[type[Extractor]] = Registry("extract.<modality>.name", "extractor", ExtractorError)
EXTRACTORS.register("transformers", "extractors.text.hf_transformers:TransformersText")
EXTRACTORS.register("opensmile", "extractors.audio.opensmile_functionals:OpenSmileAudio")
EXTRACTORS.register("librosa", "extractors.audio.librosa_stats:LibrosaAudio")
EXTRACTORS.register("torchvision", "extractors.visual.torchvision_cnn:TorchvisionVisual")
EXTRACTORS.register("pickled", "extractors.pickled:PickledVectors")


def extractor_class(name: str) -> type[Extractor]:
    """The extractor class registered as ``name`` (its module imported now)."""
    return EXTRACTORS.get(name)


def extractor_code_digest(name: str) -> str:
    """The ``code_sha256`` the extractor ``name`` would record today, without importing it."""
    return code_digest(str(EXTRACTORS.target(name)).partition(":")[0])


def get_extractor(modality: str, name: str, params: dict[str, Any] | None = None,
                  device: str = DEFAULT_DEVICE, precision: str = DEFAULT_PRECISION) -> Extractor:
    """Instantiate the extractor ``name`` for ``modality`` with its params (checked), on ``device``
    in ``precision`` (the top-level switches)."""
    cls = extractor_class(name)
    if name not in families(modality):
        raise ExtractorError(f"extract.{modality}.name={name!r}: a {cls.modality} extractor "
                             f"({modality}: {', '.join(families(modality))})")
    switches = sorted({"device", "precision"} & set(params or {}))
    if switches:
        raise ExtractorError(f"extract.{modality}.{name}.{switches[0]}: not an extractor param (the "
                             f"{switches[0]} is the top-level `{switches[0]}` param)")
    serves_all = {"modality": modality} if cls.modality not in MODALITIES else {}
    return cls(device=device, precision=precision, **serves_all, **(params or {}))


def families(modality: str) -> list[str]:
    """The registered extractor names serving ``modality`` (read from the module paths: no import):
    those of its folder and those at the top of ``extractors/``."""
    def serves(name: str) -> bool:
        parts = str(EXTRACTORS.target(name)).partition(":")[0].split(".")
        return len(parts) == 2 or parts[1] == modality

    return [name for name in EXTRACTORS.names() if serves(name)]


def params_extensions(modalities: Sequence[str] = MODALITIES) -> dict:
    """The ``extract.<modality>`` sections' family keys for :func:`config.schema.validate`: the
    registered names (each family checks its own params when built; nothing imported now)."""
    return {f"extract.{m}": dict.fromkeys(families(m)) for m in modalities}


def section_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen extractor's own params from an ``extract.<modality>`` section: each family keeps
    its params under its own name (``extract.audio.opensmile``, ``extract.audio.librosa``), so
    switching ``name`` needs nothing else."""
    return dict(section.get(section.get("name") or "", None) or {})
