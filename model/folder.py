"""A trained model as a self-describing folder, ``save_pretrained``/``from_pretrained`` style. This
module owns the format (writer, reader, refusals); :class:`ModelFolder` is the one way in and out:

- ``config.json``: ``format_version``, the model's registry name (:data:`model.MODELS`) and config,
  ``id2label``, the corpus, and per modality the feature extractor, its params, identity and dim:
  everything needed to rebuild the model and to reproduce its inputs;
- ``weights.pt``: the state dict alone, read with ``torch.load(weights_only=True)``: loading never
  runs pickled code;
- ``provenance.json``: how it was trained: seed, selected epoch, dev wa-F1, training dialogues,
  train config, library versions.

The train stage writes one per seed (``data/model/checkpoints/seed_<s>/``); evaluate and predict
read them back.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from config.paths import atomic_file
from model import MODELS
from model.versions import library_versions

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
PROVENANCE_FILE = "provenance.json"
FILES = (CONFIG_FILE, WEIGHTS_FILE, PROVENANCE_FILE)


class ArtifactError(ValueError):
    """A model folder that cannot be used; the message names the file and what is wrong."""


@dataclass
class ModelFolder:
    """A model with what ``config.json`` and ``provenance.json`` say of it.

    Args:
        model: the network, rebuilt from ``config["model"]`` and ``config["model_config"]``.
        config: ``config.json``'s content; provenance: ``provenance.json``'s.
        path: the folder it was read from or written to (None before either).
    """

    model: nn.Module
    config: dict
    provenance: dict
    path: Path | None = None

    @classmethod
    def from_state(cls, *, model: str, model_config: dict, state_dict: dict[str, torch.Tensor],
                   labels: list[str], corpus: str, features: dict[str, dict], provenance: dict,
                   device: str = "cpu") -> ModelFolder:
        """A trained state with its description (what the train stage has at the end of a seed)."""
        config = {"format_version": FORMAT_VERSION, "model": model, "model_config": model_config,
                  "id2label": {str(i): label for i, label in enumerate(labels)}, "corpus": corpus,
                  "features": features}
        return cls(build(config, state_dict, device), config, provenance)

    @classmethod
    def from_pretrained(cls, path: Path | str, device: str = "cpu") -> ModelFolder:
        """The folder at ``path``: files present, format version and keys checked, weights read
        weights-only, and weights of other names or shapes than the config makes refused, naming
        the tensor."""
        path = Path(path)
        config, provenance = read_config(path)
        weights = path / WEIGHTS_FILE
        try:
            state = torch.load(weights, map_location=device, weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
            raise ArtifactError(f"{weights}: not weights the train stage wrote ({exc})") from None
        try:
            return cls(build(config, state, device), config, provenance, path)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{weights}: {exc}") from None

    def save_pretrained(self, path: Path | str) -> Path:
        """Write the three files into ``path`` (created); the library versions join the provenance."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with atomic_file(path / WEIGHTS_FILE) as fh:      # a kill or a full disk leaves no half file
            torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, fh)
        with atomic_file(path / CONFIG_FILE, "w") as fh:
            fh.write(json.dumps(self.config, indent=2) + "\n")
        with atomic_file(path / PROVENANCE_FILE, "w") as fh:   # last: the folder is whole once it is here
            fh.write(json.dumps({**self.provenance, "libraries": library_versions()}, indent=2, default=float)
                     + "\n")
        self.path = path
        return path

    @property
    def labels(self) -> list[str]:
        """The label list, in class-index order."""
        return labels(self.config)

    @property
    def modalities(self) -> list[str]:
        return list(self.config["features"])


def labels(config: dict) -> list[str]:
    """The label list, in class-index order, of a ``config.json``."""
    id2label = config["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def read_config(path: Path) -> tuple[dict, dict]:
    """``config.json`` and ``provenance.json``, checked (files present, format version, keys)."""
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise ArtifactError(f"{path}: not a model folder: {', '.join(missing)} missing "
                            "(written by the train stage)")
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        provenance = json.loads((path / PROVENANCE_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: unreadable JSON: {exc}") from None
    if config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path / CONFIG_FILE}: format_version {config.get('format_version')!r}, "
                            f"this code reads {FORMAT_VERSION}")
    for key in ("model", "model_config", "id2label", "features"):
        if key not in config:
            raise ArtifactError(f"{path / CONFIG_FILE}: no {key!r}")
    return config, provenance


def build(config: dict, state_dict: dict[str, torch.Tensor], device: str = "cpu") -> nn.Module:
    """The model ``config`` (``model``, ``model_config``) describes, with ``state_dict`` loaded; a
    state of other shapes or names is refused with the first difference."""
    architecture = MODELS.get(config["model"])
    model = architecture(architecture.config_class(**config["model_config"]))
    expected = model.state_dict()
    for key in sorted(set(expected) | set(state_dict)):
        if key not in state_dict or key not in expected:
            raise ValueError(f"weights {'lack' if key not in state_dict else 'have an unexpected'} "
                             f"tensor {key!r} for the recorded model_config")
        if tuple(state_dict[key].shape) != tuple(expected[key].shape):
            raise ValueError(f"weights: {key!r} has shape {tuple(state_dict[key].shape)}, the recorded "
                             f"model_config makes it {tuple(expected[key].shape)}")
    model.load_state_dict(state_dict)
    return model.to(device).eval()
