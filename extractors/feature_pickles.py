"""The pickled feature files the field's ERC papers released, read and written: the one owner of
their layouts.

Each file is one pickled tuple whose items are dicts keyed by dialogue id (one list per dialogue,
one entry per utterance, in dialogue order) and lists of dialogue ids (the splits). The layouts, as
the public dataloaders unpack them (``pickle.load(f, encoding='latin1')``: the files were written
by Python 2):

========== ======= ==========================================================================
layout     corpus  items
========== ======= ==========================================================================
amb_dsgdn  iemocap videoIDs, videoSpeakers, videoLabels, videoText, roberta2, roberta3, roberta4,
                   videoAudio, videoVisual, videoSentence, trainVid, testVid (AMB-DSGDN, SDT)
amb_dsgdn  meld    the same + one unused trailing item
mmgcn      iemocap videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual,
                   videoSentence, trainVid, testVid (DialogueGCN, MMGCN)
mmgcn      meld    the same + one unused trailing item (MMGCN's ``MELD_features_raw1.pkl``)
dialoguegcn meld   videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoSentence,
                   trainVid, testVid, videoSentiment (no visual; read only)
cosmic     iemocap speakers, labels, roberta1..4, sentences, trainIds, testIds, validIds
cosmic     meld    speakers, labels, sentiment labels, roberta1..4, sentences, trainIds, testIds,
                   validIds
========== ======= ==========================================================================

Speakers: IEMOCAP ``'M'``/``'F'``; MELD one-hot vectors of :data:`MELD_SPEAKERS` positions.
Labels: indices into :data:`LABELS` (the community order). In the AMB-DSGDN layout ``videoText``
is the first RoBERTa layer's feature (``roberta1``).

Loading never runs code: :class:`SafeUnpickler` admits the builtin containers and the numpy
array, dtype and scalar constructors, and refuses any other global, naming it.
"""
from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from config.paths import atomic_file, file_problem
from config.vocabulary import FEATURE_FILE_FORMATS

LABELS = {"iemocap": ("hap", "sad", "neu", "ang", "exc", "fru"),
          "meld": ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")}
MELD_SPEAKERS = 9          # the width of MELD's one-hot speaker vectors
IEMOCAP_SPEAKERS = ("M", "F")
SPLIT_ITEMS = ("train", "test", "valid")
UNUSED = "unused"

_SDT = ("ids", "speakers", "labels", "videoText", "roberta2", "roberta3", "roberta4", "videoAudio",
        "videoVisual", "sentences", "train", "test")
_MMGCN = ("ids", "speakers", "labels", "videoText", "videoAudio", "videoVisual", "sentences", "train", "test")
_COSMIC = ("speakers", "labels", "roberta1", "roberta2", "roberta3", "roberta4", "sentences", "train", "test",
           "valid")
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "amb_dsgdn": {"iemocap": _SDT, "meld": (*_SDT, UNUSED)},
    "mmgcn": {"iemocap": _MMGCN, "meld": (*_MMGCN, UNUSED)},
    "dialoguegcn": {"iemocap": _MMGCN,
                    "meld": ("ids", "speakers", "labels", "videoText", "videoAudio", "sentences", "train",
                             "test", "sentiment")},
    "cosmic": {"iemocap": _COSMIC, "meld": ("speakers", "labels", "sentiment", *_COSMIC[2:])},
}
EXPORT_LAYOUTS = FEATURE_FILE_FORMATS          # the layouts :func:`write_feature_file` writes
PER_DIALOGUE = ("ids", "speakers", "labels", "sentences", "sentiment")     # not vectors
ROBERTA = ("roberta1", "roberta2", "roberta3", "roberta4")
ALIASES = {"amb_dsgdn": {"roberta1": "videoText"}}      # the same vectors under the other name
MEAN_ENTRY = "roberta_mean"                             # the mean of the four RoBERTa layers


class FeatureFileError(ValueError):
    """A feature file that cannot be read as its layout says; the message names the file, and the
    dialogue and entry at fault."""


# Globals a feature file may name: numpy arrays (numpy 1 and 2 module paths), dtypes and scalars,
# containers, and the bytes of protocol-2 pickles written by Python 3 (``_codecs.encode`` of a
# latin1 string: a codec, no code). Python 2's names (__builtin__, copy_reg) arrive mapped.
ALLOWED_GLOBALS = frozenset({
    ("_codecs", "encode"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "list"), ("builtins", "dict"),
    ("builtins", "tuple"), ("builtins", "bytearray"), ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds containers, strings, numbers and numpy arrays only: any other
    global (a function a payload would call, a class it would build) is refused by name before
    anything runs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise FeatureFileError(f"refused to load {module}.{name}: a feature file holds containers "
                                   "and numpy arrays only (nothing read from a download may run code)")
        return super().find_class(module, name)


def safe_load(data: bytes, source: str) -> object:
    """Unpickle ``data`` (Python 2 strings decoded as latin1, as the public loaders do)."""
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except FeatureFileError as exc:
        raise FeatureFileError(f"{source}: {exc}") from None
    except Exception as exc:   # a truncated or foreign file: any unpickling error
        raise FeatureFileError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None


@dataclass
class FeatureFile:
    """A feature file, normalised: dialogue ids as strings, in the file's split order.

    Args:
        layout, corpus: which table row above it follows.
        splits: ``train``/``test``/``valid`` -> dialogue ids as the file lists them (``valid``
            only where the layout has it).
        speakers: dialogue -> one speaker index per utterance (IEMOCAP M=0, F=1; MELD the
            one-hot position).
        labels: dialogue -> label index per utterance (into ``LABELS[corpus]``).
        sentences: dialogue -> the utterances' text. utterance_ids: dialogue -> ids (``videoIDs``)
            where the layout has them, else None.
        vectors: entry name -> dialogue -> (n, d) float32.
    """

    layout: str
    corpus: str
    splits: dict[str, list[str]]
    speakers: dict[str, list[int]]
    labels: dict[str, list[int]]
    sentences: dict[str, list[str]]
    utterance_ids: dict[str, list[str]] | None
    vectors: dict[str, dict[str, np.ndarray]]
    sha256: str = ""
    int_ids: bool = False          # the file's dialogue ids were integers (MELD)
    extra: dict[str, dict] = field(default_factory=dict)   # sentiment labels, where given

    @property
    def dialogues(self) -> list[str]:
        return [d for split in SPLIT_ITEMS for d in self.splits.get(split, [])]

    def entries(self) -> list[str]:
        """The vector entries a modality may read, ``roberta_mean`` where the four layers are here."""
        names = list(self.vectors)
        if all(resolve_entry(self.layout, r) in self.vectors for r in ROBERTA):
            names.append(MEAN_ENTRY)
        return names

    def entry(self, name: str) -> dict[str, np.ndarray]:
        """Dialogue -> (n, d) float32 of entry ``name`` (a file name, an alias or ``roberta_mean``)."""
        if name == MEAN_ENTRY and MEAN_ENTRY not in self.vectors:
            layers = [self.entry(r) for r in ROBERTA]
            return {d: np.mean([layer[d] for layer in layers], axis=0, dtype=np.float64).astype(np.float32)
                    for d in self.dialogues}
        resolved = resolve_entry(self.layout, name)
        if resolved not in self.vectors:
            raise FeatureFileError(f"entry {name!r}: not in this {self.layout} {self.corpus} file "
                                   f"(entries: {', '.join(self.entries())})")
        return self.vectors[resolved]


def resolve_entry(layout: str, name: str) -> str:
    return ALIASES.get(layout, {}).get(name, name)


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a path that is not a regular file (a directory, a pipe) is refused by name
    without opening it (opening a pipe would block)."""
    problem = file_problem(path)
    if problem:
        raise FeatureFileError(f"{path}: the feature file {problem}")
    return path.read_bytes()


def read_feature_file(path: Path | str, layout: str = "auto") -> FeatureFile:
    """Read, check and normalise the feature file at ``path`` (``layout``: one of
    :data:`LAYOUTS`, or ``auto`` to tell it from the tuple's length and content)."""
    path = Path(path)
    data = read_bytes(path)
    loaded = safe_load(data, str(path))
    if not isinstance(loaded, (tuple, list)):
        raise FeatureFileError(f"{path}: a {type(loaded).__name__}, not the tuple of a feature file")
    layout, corpus = detect_layout(loaded, layout, str(path))
    out = parse(dict(zip(LAYOUTS[layout][corpus], loaded)), layout, corpus, str(path))
    out.sha256 = hashlib.sha256(data).hexdigest()
    return out


def detect_layout(items: Sequence, layout: str, source: str) -> tuple[str, str]:
    """(layout, corpus) of a loaded tuple: its length, then what its first items hold."""
    if layout != "auto" and layout not in LAYOUTS:
        raise FeatureFileError(f"layout={layout!r}: use auto or one of {', '.join(LAYOUTS)}")
    fits = [(name, corpus) for name, corpora in LAYOUTS.items() for corpus, items_ in corpora.items()
            if len(items_) == len(items) and layout in ("auto", name)]
    fits = [(name, corpus) for name, corpus in fits if _plausible(items, name, corpus)]
    if layout == "auto" and len({f for f in fits}) > 1:
        # dialoguegcn and mmgcn share IEMOCAP's 9-tuple: the same file, read the same way
        fits = [f for f in fits if f[0] != "dialoguegcn" or f[1] == "meld"]
    if not fits:
        expected = "; ".join(f"{n} {c}: {len(i)}" for n, cs in LAYOUTS.items() for c, i in cs.items()
                             if layout in ("auto", n))
        raise FeatureFileError(f"{source}: a {len(items)}-item tuple fits no known layout "
                               f"(items per layout: {expected})")
    return fits[0]


def _first_values(item) -> list:
    if isinstance(item, Mapping) and item:
        first = next(iter(item.values()))
        return list(first) if isinstance(first, (list, tuple, np.ndarray)) else []
    return []


def _plausible(items: Sequence, layout: str, corpus: str) -> bool:
    """Whether the speakers item holds this corpus' speakers ('M'/'F' or one-hot vectors)."""
    names = LAYOUTS[layout][corpus]
    speakers = _first_values(items[names.index("speakers")])
    if not speakers:
        return False
    if corpus == "iemocap":
        return all(isinstance(s, str) and s in IEMOCAP_SPEAKERS for s in speakers)
    return all(not isinstance(s, str) and np.ndim(s) == 1 for s in speakers)


def parse(named: dict[str, object], layout: str, corpus: str, source: str) -> FeatureFile:
    """The named items checked and normalised; every problem names the dialogue and the entry."""
    splits = {}
    for split in SPLIT_ITEMS:
        if split in named:
            ids = named[split]
            if not isinstance(ids, (list, tuple, set, frozenset, np.ndarray)):
                raise FeatureFileError(f"{source}: {_item_name(layout, corpus, split)} is a "
                                       f"{type(ids).__name__}, not a list of dialogue ids")
            splits[split] = [str(d) for d in ids]
    dialogues = [d for s in splits.values() for d in s]
    repeated = sorted({d for d in dialogues if dialogues.count(d) > 1})
    if repeated:
        raise FeatureFileError(f"{source}: dialogue {repeated[0]} is listed in more than one split")
    int_ids = any(isinstance(d, (int, np.integer)) for s in SPLIT_ITEMS if s in named for d in named[s])
    per_dialogue = {}
    for name, item in named.items():
        if name in SPLIT_ITEMS or name == UNUSED:
            continue
        if not isinstance(item, Mapping):
            raise FeatureFileError(f"{source}: {_item_name(layout, corpus, name)} is a "
                                   f"{type(item).__name__}, not a dict keyed by dialogue id")
        keyed = {str(k): v for k, v in item.items()}
        missing = [d for d in dialogues if d not in keyed]
        if missing:
            raise FeatureFileError(f"{source}: dialogue {missing[0]}: no entry in "
                                   f"{_item_name(layout, corpus, name)} ({len(missing)} dialogues missing)")
        per_dialogue[name] = keyed
    out = FeatureFile(layout, corpus, splits, {}, {}, {}, None, {}, int_ids=int_ids)
    labels = LABELS[corpus]
    for dia in dialogues:
        n = _length(per_dialogue["labels"][dia], source, dia, _item_name(layout, corpus, "labels"))
        for name, keyed in per_dialogue.items():
            item = _item_name(layout, corpus, name)
            got = _length(keyed[dia], source, dia, item)
            if got != n:
                raise FeatureFileError(f"{source}: dialogue {dia}: {item} has {got} utterances, "
                                       f"{_item_name(layout, corpus, 'labels')} {n}")
        out.labels[dia] = _labels(per_dialogue["labels"][dia], labels, source, dia,
                                  _item_name(layout, corpus, "labels"))
        out.speakers[dia] = _speakers(per_dialogue["speakers"][dia], corpus, source, dia,
                                      _item_name(layout, corpus, "speakers"))
        out.sentences[dia] = [str(s) for s in per_dialogue["sentences"][dia]]
        if "ids" in per_dialogue:
            out.utterance_ids = out.utterance_ids or {}
            out.utterance_ids[dia] = [str(u) for u in per_dialogue["ids"][dia]]
        if "sentiment" in per_dialogue:
            out.extra.setdefault("sentiment", {})[dia] = [int(x) for x in per_dialogue["sentiment"][dia]]
    for name, keyed in per_dialogue.items():
        if name not in PER_DIALOGUE:
            out.vectors[name] = _vectors(keyed, dialogues, source, _item_name(layout, corpus, name))
    return out


def _item_name(layout: str, corpus: str, name: str) -> str:
    """How the public loaders call the item (``videoLabels``, ``trainIds``): for messages."""
    sdt_like = layout != "cosmic"
    names = {"ids": "videoIDs", "speakers": "videoSpeakers" if sdt_like else "speakers",
             "labels": "videoLabels" if sdt_like else "labels", "sentences": "videoSentence" if sdt_like
             else "sentences", "train": "trainVid" if sdt_like else "trainIds",
             "test": "testVid" if sdt_like else "testIds", "valid": "validIds",
             "sentiment": "videoSentiment" if sdt_like else "sentiment labels"}
    return names.get(name, name)


def _length(value, source: str, dia: str, item: str) -> int:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise FeatureFileError(f"{source}: dialogue {dia}: {item} is a {type(value).__name__}, "
                               "not one entry per utterance")
    return len(value)


def _labels(values, labels: Sequence[str], source: str, dia: str, item: str) -> list[int]:
    out = []
    for i, x in enumerate(values):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer, float, np.floating)) \
                or x != int(x) or not 0 <= int(x) < len(labels):
            raise FeatureFileError(f"{source}: dialogue {dia}: {item}[{i}] = {x!r} is outside the label map "
                                   f"0..{len(labels) - 1} ({', '.join(labels)})")
        out.append(int(x))
    return out


def _speakers(values, corpus: str, source: str, dia: str, item: str) -> list[int]:
    out = []
    for i, s in enumerate(values):
        if corpus == "iemocap":
            if s not in IEMOCAP_SPEAKERS:
                raise FeatureFileError(f"{source}: dialogue {dia}: {item}[{i}] = {s!r}: expected 'M' or 'F'")
            out.append(IEMOCAP_SPEAKERS.index(s))
        else:
            vector = np.asarray(s, dtype=float) if not isinstance(s, str) else np.zeros(0)
            one_hot = vector.ndim == 1 and vector.size and not set(np.unique(vector)) - {0.0, 1.0}
            if not one_hot or vector.sum() != 1:
                raise FeatureFileError(f"{source}: dialogue {dia}: {item}[{i}] = {s!r}: expected a one-hot "
                                       f"speaker vector")
            out.append(int(vector.argmax()))
    return out


def _vectors(keyed: dict, dialogues: list[str], source: str, item: str) -> dict[str, np.ndarray]:
    out, dim = {}, None
    for dia in dialogues:
        rows = keyed[dia]
        try:
            matrix = np.asarray([np.asarray(v, dtype=np.float64).reshape(-1) for v in rows], dtype=np.float64)
        except (ValueError, TypeError):
            sizes = sorted({np.size(v) for v in rows})
            raise FeatureFileError(f"{source}: dialogue {dia}: {item}: vectors of different sizes "
                                   f"{sizes} in one dialogue") from None
        if matrix.ndim != 2 or not len(matrix):
            raise FeatureFileError(f"{source}: dialogue {dia}: {item}: no vectors")
        if dim is not None and matrix.shape[1] != dim:
            raise FeatureFileError(f"{source}: dialogue {dia}: {item} vectors are {matrix.shape[1]}-d, "
                                   f"earlier dialogues' {dim}-d")
        dim = matrix.shape[1]
        bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
        if len(bad):
            raise FeatureFileError(f"{source}: dialogue {dia}: {item}[{bad[0]}] holds NaN or infinite values "
                                   f"({len(bad)} such utterances in the dialogue)")
        out[dia] = matrix.astype(np.float32)
    return out


def write_feature_file(ff: FeatureFile, path: Path | str, layout: str) -> str:
    """Write ``ff`` in ``layout`` (one of :data:`EXPORT_LAYOUTS`) at ``path`` (through a temporary
    file, renamed when complete); returns its sha256. A layout's vector items take the entries of
    the same name in ``ff.vectors``; a missing one is refused, naming it."""
    if layout not in EXPORT_LAYOUTS:
        raise FeatureFileError(f"format={layout!r}: use one of {', '.join(EXPORT_LAYOUTS)}")
    names = LAYOUTS[layout][ff.corpus]
    key = (lambda d: int(d)) if ff.int_ids else (lambda d: d)
    dialogues = ff.dialogues
    items = []
    for name in names:
        if name in SPLIT_ITEMS:
            items.append([key(d) for d in ff.splits.get(name, [])])
        elif name == UNUSED:
            items.append(None)
        elif name == "ids":
            ids = ff.utterance_ids or {d: [f"{d}_{i}" for i in range(len(ff.labels[d]))] for d in dialogues}
            items.append({key(d): list(ids[d]) for d in dialogues})
        elif name == "speakers":
            items.append({key(d): [_speaker_out(s, ff.corpus, d) for s in ff.speakers[d]] for d in dialogues})
        elif name == "labels":
            items.append({key(d): list(ff.labels[d]) for d in dialogues})
        elif name == "sentences":
            items.append({key(d): list(ff.sentences[d]) for d in dialogues})
        elif name == "sentiment":
            sentiment = ff.extra.get("sentiment", {})
            items.append({key(d): list(sentiment.get(d, [0] * len(ff.labels[d]))) for d in dialogues})
        else:
            if name not in ff.vectors:
                raise FeatureFileError(f"format={layout}: no features for its {name!r} item")
            items.append({key(d): list(ff.vectors[name][d]) for d in dialogues})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(tuple(items), protocol=4)
    with atomic_file(path) as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _speaker_out(index: int, corpus: str, dialogue: str):
    if corpus == "iemocap":
        if not 0 <= index < len(IEMOCAP_SPEAKERS):
            raise FeatureFileError(f"dialogue {dialogue}: speaker index {index}: IEMOCAP layouts hold two "
                                   "speakers, M (0) and F (1)")
        return IEMOCAP_SPEAKERS[index]
    if not 0 <= index < MELD_SPEAKERS:
        raise FeatureFileError(f"dialogue {dialogue}: speaker index {index}: MELD layouts hold "
                               f"{MELD_SPEAKERS} speaker positions")
    return [1 if i == index else 0 for i in range(MELD_SPEAKERS)]
