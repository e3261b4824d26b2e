"""A trained model as a self-describing folder; this module owns its format (writer, reader,
refusals):

- ``config.json``: ``format_version``, the model's registry name (:data:`model.MODELS`) and config,
  ``id2label``, the corpus, and per modality the feature extractor, its params, identity and dim:
  everything needed to rebuild the model and to reproduce its inputs;
- ``weights.pt``: the state dict alone, read with ``torch.load(weights_only=True)``: loading never
  runs pickled code;
- ``provenance.json``: how it was trained: seed, selected epoch, dev wa-F1, training dialogues,
  train config, library versions.

The train stage writes one per seed (``data/model/checkpoints/seed_<s>/``); evaluate reads them
through :func:`load`.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from model.ambdsgdn import AMBDSGDN
from model.training import restore
from model.versions import library_versions

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
PROVENANCE_FILE = "provenance.json"
FILES = (CONFIG_FILE, WEIGHTS_FILE, PROVENANCE_FILE)


class ArtifactError(ValueError):
    """A model folder that cannot be used; the message names the file and what is wrong."""


def save(out_dir: Path, *, model: str, model_config: dict, labels: list[str], corpus: str,
         features: dict[str, dict], state_dict: dict[str, torch.Tensor], provenance: dict) -> Path:
    """Write the three files into ``out_dir`` (created); returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"format_version": FORMAT_VERSION, "model": model, "model_config": model_config,
              "id2label": {str(i): label for i, label in enumerate(labels)}, "corpus": corpus,
              "features": features}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, out_dir / WEIGHTS_FILE)
    (out_dir / PROVENANCE_FILE).write_text(
        json.dumps({**provenance, "libraries": library_versions()}, indent=2, default=float) + "\n")
    return out_dir


def labels(config: dict) -> list[str]:
    """The label list, in class-index order, of a ``config.json``."""
    id2label = config["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def read_config(model_dir: Path) -> tuple[dict, dict]:
    """``config.json`` and ``provenance.json``, checked (files present, format version, keys)."""
    missing = [name for name in FILES if not (model_dir / name).is_file()]
    if missing:
        raise ArtifactError(f"{model_dir}: not a model folder: {', '.join(missing)} missing "
                            "(written by the train stage)")
    try:
        config = json.loads((model_dir / CONFIG_FILE).read_text())
        provenance = json.loads((model_dir / PROVENANCE_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{model_dir}: unreadable JSON: {exc}") from None
    if config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{model_dir / CONFIG_FILE}: format_version {config.get('format_version')!r}, "
                            f"this code reads {FORMAT_VERSION}")
    for key in ("model", "model_config", "id2label", "features"):
        if key not in config:
            raise ArtifactError(f"{model_dir / CONFIG_FILE}: no {key!r}")
    return config, provenance


def load(model_dir: Path, device: str = "cpu") -> tuple[AMBDSGDN, dict, dict]:
    """The model of a folder with its config and provenance; weights are read weights-only, and
    weights of other names or shapes than the config makes are refused, naming the tensor."""
    config, provenance = read_config(model_dir)
    path = model_dir / WEIGHTS_FILE
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise ArtifactError(f"{path}: not weights the train stage wrote ({exc})") from None
    try:
        return restore(config, state, device), config, provenance
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: {exc}") from None
