"""What every feature extractor declares and does.

An extractor turns one manifest row into a float32 vector of a fixed dimension, in two steps so
that media decoding (CPU, I/O) can overlap with the model (``forward``):

- ``load(row, media_path)`` -> model input for one utterance (text, waveform, face crops), or
  raises :class:`UtteranceFailure` with a reason (unreadable media, zero-length span, ...);
- ``forward(inputs)`` -> ``(len(inputs), dim)`` float32 array for a batch of loaded inputs.

It also declares ``name``, ``modality``, its params (with defaults), ``dim`` and ``identity()``:
everything that determines its output (model id + revision or weights source, library
versions, params). A cache written under one identity is never read under another.
"""
from __future__ import annotations

import ast
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

# The manifest's vocabulary (the extractors' input contract) is imported, never restated.
from config.schema import ParamsError, from_defaults, validate_section
from config.vocabulary import DEFAULT_DEVICE, DEFAULT_PRECISION, MEDIA_PREFIX, PRECISIONS, SOURCE_COLUMN


class ExtractorError(ValueError):
    """Bad extractor params or an unavailable model; the message names the param/model."""


class UtteranceFailure(Exception):
    """One utterance cannot be extracted; ``str(exc)`` is the reason recorded in the cache."""


MediaPath = Callable[[str], Path | None]

# Identity fields that change only the rounding of the same computation (the device type and the
# precision: fp16 on CUDA against fp32 on the CPU): they name separate feature-store shelves, so
# vectors of the two are never mixed in one cache, but a trained model applied on another device
# is not refused for them (the difference is reported).
ROUNDING_FIELDS = ("compute",)


class Extractor(ABC):
    name: ClassVar[str]
    modality: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]]
    # Identity fields that only say where the weights were found -> the field naming their content:
    # a model folder moved elsewhere is still the same model when the content field agrees.
    relocatable: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, device: str = DEFAULT_DEVICE, precision: str = DEFAULT_PRECISION,
                 **params: Any) -> None:
        # The one check of a family's params: the params schema's, typed by the declared defaults.
        try:
            self.params = validate_section(from_defaults(self.defaults), params,
                                           f"extract.{self.modality}.{self.name}")
        except ParamsError as exc:
            raise ExtractorError(str(exc)) from None
        # Where and in what precision a neural extractor runs: the top-level switches, not params;
        # the identity names their effect (``compute``: the device type and the precision in effect).
        self.device_name = device
        if precision not in PRECISIONS:
            raise ExtractorError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}")
        self.precision = precision

    @property
    def batch_size(self) -> int:
        return int(self.params.get("batch_size", 16))

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def identity(self) -> dict: ...

    @abstractmethod
    def load(self, row: pd.Series, media_path: MediaPath) -> Any: ...

    @abstractmethod
    def forward(self, inputs: list[Any]) -> np.ndarray: ...

    def prepare_inputs(self, table: pd.DataFrame, labelled: bool = True) -> None:
        """Called with the whole table before any :meth:`input_key` or :meth:`load`: an extractor
        whose input spans several rows (a text encoder reading the previous turns) gathers it
        here, and one trained on a corpus refuses a table it would leak into (``labelled``: the
        table's splits are real, not a conversation to predict on). Nothing by default."""

    def order_key(self, row: pd.Series) -> float:
        """Batches are formed from rows sorted by this key within a chunk (text: length, so a
        batch holds similar lengths and little padding). Constant by default: manifest order."""
        return 0.0

    def load_stats(self, loaded: Any) -> dict[str, int]:
        """Per-utterance counters worth reporting (e.g. face-detection fallbacks); none by default."""
        return {}

    @classmethod
    def code_digest(cls) -> str:
        """The digest of this extractor's code (:func:`code_digest` of its module)."""
        return code_digest(cls.__module__)

    def full_identity(self) -> dict:
        """``identity()`` plus the implementation's source digest: editing an extractor's code
        invalidates what it computed before (a cache never mixes two implementations). Computed
        once per instance: a neural extractor's identity hashes its weights."""
        if not hasattr(self, "_full_identity"):
            self._full_identity = {**self.identity(), "code_sha256": self.code_digest()}
        return self._full_identity

    def identity_differences(self, recorded: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
        """``(field, recorded, installed)`` for every field where this extractor's full identity
        differs from ``recorded`` (one saved with features or a trained model): where any differs,
        it would not compute the recorded features. A :attr:`relocatable` field may differ when
        its content field is known and equal on both sides."""
        installed = self.full_identity()
        out = []
        for key in sorted(set(recorded) | set(installed)):
            was, now = recorded.get(key), installed.get(key)
            content = self.relocatable.get(key)
            moved = content is not None and recorded.get(content) is not None \
                and recorded.get(content) == installed.get(content)
            if was != now and not moved:
                out.append((key, was, now))
        return out

    def identity_hash(self) -> str:
        """16 hex of the sha256 of :meth:`full_identity` (names the feature-store shelf)."""
        return hashlib.sha256(json.dumps(self.full_identity(), sort_keys=True).encode()).hexdigest()[:16]

    def input_key(self, row: pd.Series, media_path: MediaPath, digest: Callable[[Path], str]) -> str:
        """Fingerprint of what this extractor reads for ``row``: the text, or the media file's
        content digest (``digest(path)``) + span + face side. The feature store files vectors under
        it, so a vector is reused for identical input under any utterance id, corpus or path, and
        a file regenerated with other content is recomputed."""
        column = SOURCE_COLUMN[self.modality]
        if self.modality not in MEDIA_PREFIX:
            parts = [row[column]]
        else:
            prefix = MEDIA_PREFIX[self.modality]
            path = media_path(row[column])
            content = digest(path) if path is not None and path.is_file() else None
            parts = [content, row[f"{prefix}_start_s"], row[f"{prefix}_end_s"],
                     row["video_side"] if prefix == "video" else "",
                     None if content else f"absent:{row[column]}"]
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]


REPO = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("extractors", "model")   # where the code that shapes a vector lives


def module_file(module: str) -> Path | None:
    """The source file of a project module, from its dotted name (nothing is imported)."""
    base = REPO.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def implementation_files(module: str) -> list[Path]:
    """The files whose code shapes an extractor's vectors: its module's and, transitively, those of
    the modules it imports from :data:`CODE_PACKAGES` (package ``__init__`` files, registries,
    aside), read from the import statements: nothing is imported, so a reader (the train stage)
    can check a cache against the code without loading the extractor, and its DVC deps stay
    those of the features."""
    first = module_file(module)
    if first is None:
        raise ExtractorError(f"{module}: no such module in {REPO}")
    files, todo = {first}, [first]
    while todo:
        for node in ast.walk(ast.parse(todo.pop().read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                path = module_file(name) if name.split(".")[0] in CODE_PACKAGES else None
                if path is not None and path.name != "__init__.py" and path not in files:
                    files.add(path)
                    todo.append(path)
    return sorted(files)


def code_digest(module: str) -> str:
    """sha256 (16 hex) of the code of :func:`implementation_files`, known without loading any
    model, so a reader can refuse a cache built by other code. What is hashed is each file's path
    and syntax tree without docstrings (:func:`code_fingerprint`): a comment, a docstring or the
    layout changes no vector, so it keeps the identity, and the caches and the models trained
    on them."""
    digest = hashlib.sha256()
    for path in implementation_files(module):
        digest.update(f"{path.relative_to(REPO).as_posix()}\n{code_fingerprint(path.read_text(encoding='utf-8'))}\n"
                      .encode())
    return digest.hexdigest()[:16]


def code_fingerprint(source: str) -> str:
    """The code of a Python source as its syntax tree, less docstrings: equal for two sources
    that differ only in comments, docstrings, blank lines or line breaks inside brackets."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def span(row: pd.Series, modality: str) -> tuple[float | None, float | None]:
    """``(start, end)`` seconds to cut from the ``modality``'s media; None = file edge."""
    prefix = MEDIA_PREFIX[modality]
    start, end = row[f"{prefix}_start_s"], row[f"{prefix}_end_s"]
    start = None if pd.isna(start) else float(start)
    end = None if pd.isna(end) else float(end)
    if start is not None and end is not None and end - start <= 0:
        raise UtteranceFailure(f"zero-length span {start:.3f}-{end:.3f} s")
    return start, end


def media_file(row: pd.Series, modality: str, media_path: MediaPath) -> Path:
    """The ``modality``'s media file of ``row`` (resolved by ``media_path``)."""
    path = media_path(row[SOURCE_COLUMN[modality]])
    if path is None:
        raise UtteranceFailure("no media (see prepare's errors.csv)")
    return path
