"""A trained model applied to new conversations: the Python API behind ``python -m pipeline.predict``.

    predictor = Predictor.from_dir("data/model/checkpoints/seed_0")
    conversation, log = read_conversation("talk.srt", ["talk.mp4"], speaker_side={"Anna": "left"})
    result = predictor.predict(conversation)      # result.table: one row per turn

:meth:`Predictor.from_dir` reads the model folder (:class:`model.folder.ModelFolder`) and builds, per
modality, the extractor its ``config.json`` records, with the recorded params; an extractor whose
identity differs from the recorded one (other weights, other config, other code, other library
version) cannot reproduce the features the model was trained on and is refused, naming every
differing field (:class:`IdentityMismatch`). :meth:`Predictor.predict` extracts the features of
any unlabelled manifest (:func:`read_conversation`, :func:`read_corpus`; vectors come from the
feature store where they were computed before), runs the model on each dialogue's graph and
returns the per-utterance table of :mod:`pipeline.lib.predictions`; an utterance whose media
fail for a modality is predicted from the others, and the table says which and why.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from config.prepare import PrepareOptions
from config.vocabulary import DEFAULT_PRECISION
from extractors import get_extractor
from extractors.base import ROUNDING_FIELDS, Extractor
from extractors.runner import collect
from extractors.store import FeatureStore
from model.data import dialogues
from model.device import pick_device
from model.folder import CONFIG_FILE, ModelFolder
from model.training import Inference, infer
from pipeline.corpora import conversation as conversation_reader
from pipeline.corpora import detect_corpus, load_corpus
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import Manifest
from pipeline.lib.predictions import prediction_table, utterance_records

BATCH_DIALOGUES = 16


class IdentityMismatch(ValueError):
    """The installed extractor cannot reproduce the features a model was trained on."""


@dataclass
class Prediction:
    """What :meth:`Predictor.predict` returns."""

    table: pd.DataFrame                         # one row per utterance (pipeline.lib.predictions)
    inference: Inference                        # the model's raw outputs (log-probs, head logits)
    failures: dict[str, dict[str, str]]         # modality -> utterance id -> why it has no features
    timings: dict[str, float] = field(default_factory=dict)

    def records(self, labels: Sequence[str]) -> list[dict]:
        """The JSON form of :attr:`table`, each modality's own probabilities included."""
        return utterance_records(self.table, self.inference, labels, self.failures)


class Predictor:
    """A model folder with the extractors that reproduce its features."""

    def __init__(self, folder: ModelFolder, extractors: dict[str, Extractor], device: str,
                 store: FeatureStore | None, timings: dict[str, float], tolerated: list[str]) -> None:
        self.folder, self.model_dir = folder, folder.path
        self.model, self.config, self.provenance = folder.model, folder.config, folder.provenance
        self.extractors, self.device, self.store = extractors, device, store
        self.timings, self.tolerated = timings, tolerated

    @property
    def labels(self) -> list[str]:
        return self.folder.labels

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @classmethod
    def from_dir(cls, model_dir: Path | str, *, device: str = "auto", precision: str = DEFAULT_PRECISION,
                 extractor_params: Mapping[str, Mapping] | None = None, tolerate: Sequence[str] = (),
                 store: FeatureStore | None = None) -> Predictor:
        """The model of ``model_dir`` and its extractors. ``extractor_params``: modality -> params
        that replace recorded ones (e.g. where a local model folder now sits); ``tolerate``:
        identity fields allowed to differ (e.g. ``transformers`` for another library version),
        reported in :attr:`tolerated`; ``store``: the feature store (default: the user's); ``device``,
        ``precision``: the top-level switches the extractors run with."""
        model_dir = Path(model_dir)
        chosen = str(pick_device(device))
        started = time.perf_counter()
        folder = ModelFolder.from_pretrained(model_dir, chosen)
        config = folder.config
        timings = {"model_load_s": time.perf_counter() - started}
        unknown = sorted(set(extractor_params or {}) - set(config["features"]))
        if unknown:
            raise IdentityMismatch(f"extractor params for {unknown[0]}: the model has no such modality "
                                   f"(it uses {', '.join(config['features'])})")
        extractors, tolerated = {}, []
        for modality, recorded in config["features"].items():
            started = time.perf_counter()
            params = {**recorded["params"], **(extractor_params or {}).get(modality, {})}
            params.pop("precision", None)   # a param in folders written before the top-level switch
            extractor = get_extractor(modality, recorded["extractor"], params, chosen, precision)
            tolerated += check_identity(model_dir, modality, recorded, extractor, tolerate)
            extractors[modality] = extractor
            timings[f"{modality}_extractor_load_s"] = time.perf_counter() - started
        return cls(folder, extractors, chosen, store, timings, tolerated)

    def predict(self, m: Manifest, progress: bool = False) -> Prediction:
        """Predictions for every utterance of ``m`` (labels, if any, are shown, never used)."""
        if m.table.empty:
            raise ValueError(f"{m.corpus}: no utterance to predict on (every row was excluded: see "
                             "the logged faults)")
        self._check_speakers(m)
        store = self.store or FeatureStore()
        matrices, present, failures, timings = {}, {}, {}, {}
        ids = m.table["utterance_id"].tolist()
        for modality, extractor in self.extractors.items():
            got = collect(m.table, m.media_path, extractor, params=extractor.params, store=store,
                          progress=progress, labelled=m.labelled)
            matrix = np.zeros((len(ids), extractor.dim), np.float32)
            has = np.zeros(len(ids), bool)
            for i, uid in enumerate(ids):
                if uid in got.vectors:
                    matrix[i], has[i] = got.vectors[uid], True
            matrices[modality], present[modality] = matrix, has
            failures[modality] = {uid: got.failures.get(uid, "not extracted") for uid in ids
                                  if uid not in got.vectors}
            timings[f"{modality}_extract_s"] = got.timings["total_s"]
            timings[f"{modality}_computed"] = got.computed
        started = time.perf_counter()
        out = infer(self.model, dialogues(m.table, self.labels, None), matrices, present,
                    BATCH_DIALOGUES, self.device)
        timings["model_s"] = time.perf_counter() - started
        return Prediction(prediction_table(m, out, self.labels, failures), out, failures, timings)

    def describe(self) -> dict:
        """What the outputs record about the model: folder, corpus, labels, modalities, features."""
        return {"model_dir": str(self.model_dir), "trained_on": self.config.get("corpus"),
                "labels": self.labels, "modalities": self.modalities, "device": self.device,
                "seed": self.provenance.get("seed"), "selected_epoch": self.provenance.get("selected_epoch"),
                "dev_wa_f1": self.provenance.get("dev_wa_f1"),
                "features": {m: {"extractor": f["extractor"], "params": self.extractors[m].params,
                                 "dim": f["dim"]} for m, f in self.config["features"].items()},
                "identity_fields_tolerated": self.tolerated}

    def _check_speakers(self, m: Manifest) -> None:
        if not self.model.contextual:     # the speaker embedding (Eq. 3) exists only for them
            return
        limit = self.model.config.max_speakers
        counts = m.table.groupby("dialogue_id")["speaker_idx"].max() + 1
        over = counts[counts > limit]
        if len(over):
            more = f" (and {len(over) - 1} more dialogues)" if len(over) > 1 else ""
            raise ValueError(f"dialogue {over.index[0]!r} has {int(over.iloc[0])} speakers{more}; this "
                             f"model was built for at most {limit} (model.max_speakers)")


def check_identity(model_dir: Path, modality: str, recorded: dict, extractor: Extractor,
                   tolerate: Sequence[str] = ()) -> list[str]:
    """Refuse an extractor that would not compute the features the model was trained on, naming
    every differing identity field; returns the differences let through: those ``tolerate``
    names, and a device or precision other than the training features' (``ROUNDING_FIELDS``)."""
    differences = extractor.identity_differences(recorded["identity"])
    if extractor.dim != recorded["dim"]:
        differences.append(("dim", recorded["dim"], extractor.dim))
    refused = [d for d in differences if d[0] not in (*tolerate, *ROUNDING_FIELDS)]
    if refused:
        listed = "; ".join(f"{key}: recorded {was!r}, installed {now!r}" for key, was, now in refused)
        raise IdentityMismatch(
            f"{model_dir / CONFIG_FILE}: features.{modality}: the installed "
            f"{recorded['extractor']!r} extractor cannot reproduce the features this model was "
            f"trained on ({listed}). Install what the model records (provenance.json lists its "
            f"libraries), point extractor params at the recorded weights, or accept a field "
            f"knowingly with --tolerate FIELD")
    return [f"{modality}.{key}: recorded {was!r}, installed {now!r}" for key, was, now in differences]


def read_conversation(transcript: Path | str, media: Sequence[Path | str] = (), *,
                      labels: Sequence[str] = (), speaker_side: Mapping[str, str] | None = None,
                      speaker_index: Mapping[str, int] | None = None, dialogue_id: str | None = None,
                      options: PrepareOptions | None = None) -> tuple[Manifest, ErrorLog]:
    """One conversation (:mod:`pipeline.corpora.conversation`) as an unlabelled manifest."""
    return conversation_reader.load(Path(transcript), [Path(p) for p in media], options or PrepareOptions(),
                                    labels=labels, speaker_side=speaker_side, speaker_index=speaker_index,
                                    dialogue_id=dialogue_id)


def read_corpus(root: Path | str, corpus: str = "auto", options: PrepareOptions | None = None,
                labelled: bool = False, **adapter_params) -> tuple[Manifest, ErrorLog]:
    """A corpus in any supported layout, labels and splits optional (an unlabelled manifest);
    ``labelled``: read as the prepare stage reads it (turns without a label of the set left out)."""
    options = dataclasses.replace(options or PrepareOptions(), labelled=labelled)
    corpus = detect_corpus(root) if corpus == "auto" else corpus
    m, log = load_corpus(corpus, root, options, **adapter_params)
    if labelled and m.table.empty:
        raise ValueError(f"{root}: no turn with a label of the set ({', '.join(m.labels)}): "
                         "--context labelled needs a labelled corpus")
    return m, log


PREDICTIONS_CSV, PREDICTIONS_JSON, ERRORS_CSV = "predictions.csv", "predictions.json", "errors.csv"


def save(prediction: Prediction, predictor: Predictor, errors: ErrorLog, out_dir: Path,
         source: dict, max_timelines: int = 20) -> dict[str, list[Path]]:
    """Write ``predictions.csv``, ``predictions.json`` (model, input, timings, utterances),
    ``errors.csv`` (what reading the input logged) and a ``timeline_<dialogue>.png`` for each of
    the first ``max_timelines`` dialogues; returns the paths written, by kind."""
    from pipeline.lib.plots import plot_timeline
    from pipeline.lib.predictions import write_csv, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("timeline_*.png"):    # a rerun on other input leaves nothing behind
        old.unlink()
    table = prediction.table
    header = {"model": predictor.describe(), "input": source, "labels": predictor.labels,
              "utterances_predicted": len(table), "input_faults": len(errors.rows),
              "timings": {**predictor.timings, **prediction.timings}}
    written = {"csv": [write_csv(out_dir / PREDICTIONS_CSV, table)],
               "json": [write_json(out_dir / PREDICTIONS_JSON, header, prediction.records(predictor.labels))],
               "errors": [write_csv(out_dir / ERRORS_CSV, errors.table())], "timelines": []}
    for dialogue, rows in list(table.groupby("dialogue_id", sort=False))[:max_timelines]:
        path = out_dir / f"timeline_{_file_safe(dialogue)}.png"
        plot_timeline(rows, predictor.labels, path, dialogue)
        written["timelines"].append(path)
    return written


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100]
