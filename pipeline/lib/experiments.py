"""The paper's experiments (``benchmarks/paper/``): an experiment file -> trained points -> test
scores per point, mean ± sample std over seeds, every epoch selected on dev.

An experiment file (YAML) holds

- ``title``: the table or figure it reruns (``Table 4: modality subsets``), ``paper``: where;
- ``points``: name -> settings. A setting is a dotted params key (``model.window: 5``,
  ``modalities: [text]``), applied before training, or an evaluation key, applied to the test split
  only: ``eval.noise`` (Gaussian noise of that many times each modality's feature standard
  deviation added to every test feature, Section 6.5) and ``eval.dialogue_length: [lo, hi]`` (only
  the test dialogues with lo..hi utterances, Section 6.3);
- ``figure``: how :mod:`pipeline.lib.experiment_report` draws it (``kind`` bars | line | heatmap |
  confusion, and the settings on its axes);
- ``published``: corpus -> point -> ``{wa_f1, wa_acc}``, the paper's own figures, shown as context.

Points whose training settings agree share one training per seed: a test-time sweep (noise,
dialogue length) trains once. Trained models are kept in ``.trained/`` beside the results, named by
their params, inputs and training code (:func:`training_key`), so a killed run continues where it
stopped and another experiment with the same configuration (Table 5's full model is Table 6's and
Fig. 3's default point) reuses it; delete the folder to reclaim the space.

Protocols (:data:`PROTOCOLS`): ``standard``, the manifest's own train/dev/test split; ``loso``,
IEMOCAP's leave-one-session-out: one fold per session (read from the dialogue ids, ``Ses01...``),
that session's dialogues the test split, a fixed 10 % of the other dialogues (seeded shuffle) dev,
the rest train; a point's score is the mean ± sample std over folds of each fold's mean over seeds;
``cross``, cross-corpus: trained (train and dev) on the given corpus, tested on another corpus' test
split, both relabelled to the classes they share (:data:`SHARED_CLASSES`; an utterance of any other
class stays in its dialogue as context, unlabelled: never trained on, never scored), on features of
the same extractor.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from config.params import set_value
from config.paths import atomic_file, file_problem
from config.schema import checked, validate
from model.data import Dialogue, dialogues
from model.device import pick_device
from pipeline.lib import manifest as manifests
from pipeline.lib.errorlog import ERROR_COLUMNS
from pipeline.lib.inputs import Inputs, load_inputs
from pipeline.lib.metrics import seed_stat
from pipeline.lib.runs import checkpoint_paths, score_checkpoint, train_models

# The params sections a point may set (validated; any other passes through unchecked).
SECTIONS = ("model", "train", "extract")
EVAL_KEYS = ("eval.noise", "eval.dialogue_length")
FIGURES = ("bars", "line", "heatmap", "confusion")
REPO = Path(__file__).resolve().parents[2]
TRAINED = ".trained"       # beside the results: trained models by training_key
NOISE_SEED = 7919          # the test-time noise draw (per model seed and modality; reproducible)
PROTOCOLS = ("standard", "loso", "cross")
# Cross-corpus classes and the corpus labels each gathers (IEMOCAP's and MELD's spellings). IEMOCAP's
# excited and frustrated, MELD's surprise, fear and disgust have no counterpart: left unlabelled.
SHARED_CLASSES = {"neutral": ("neu", "neutral"), "joy": ("hap", "happy", "joy", "happiness"),
                  "sadness": ("sad", "sadness"), "anger": ("ang", "angry", "anger")}
LOSO_DEV_FRACTION = 0.1    # of the training sessions' dialogues, for epoch selection
SESSION = re.compile(r"^Ses0*(\d+)")


@dataclass
class Experiment:
    name: str
    title: str
    points: dict[str, dict]
    paper: str = ""
    figure: dict = field(default_factory=lambda: {"kind": "bars"})
    published: dict = field(default_factory=dict)
    note: str = ""


def read_experiment(path: Path) -> Experiment:
    """The experiment file at ``path``, checked (every message names the file and the point)."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ValueError(f"{path}: the experiment file {problem}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("points"), dict) or not data["points"]:
        raise ValueError(f"{path}: expected `points:` mapping names to settings ({{dotted.key: value}})")
    unknown = sorted(set(data) - {"title", "paper", "points", "figure", "published", "note"})
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (accepted: title, paper, points, figure, "
                         "published, note)")
    for name, settings in data["points"].items():
        if not isinstance(settings, dict):
            raise ValueError(f"{path}: point {name!r}: expected a mapping of settings, got {settings!r}")
        for key, value in settings.items():
            if key.startswith("eval."):
                check_eval_setting(key, value, f"{path}: point {name!r}")
    figure = data.get("figure") or {"kind": "bars"}
    if figure.get("kind") not in FIGURES:
        raise ValueError(f"{path}: figure.kind={figure.get('kind')!r}: expected one of {', '.join(FIGURES)}")
    return Experiment(name=path.stem, title=str(data.get("title") or path.stem), points=data["points"],
                      paper=str(data.get("paper") or ""), figure=figure,
                      published=data.get("published") or {}, note=str(data.get("note") or ""))


def check_eval_setting(key: str, value, where: str) -> None:
    if key not in EVAL_KEYS:
        raise ValueError(f"{where}: unknown evaluation setting {key!r} (accepted: {', '.join(EVAL_KEYS)})")
    if key == "eval.noise" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ValueError(f"{where}: eval.noise={value!r}: expected a number >= 0 (times the feature std)")
    if key == "eval.dialogue_length" and not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)
            and 1 <= value[0] <= value[1]):
        raise ValueError(f"{where}: eval.dialogue_length={value!r}: expected [lo, hi], 1 <= lo <= hi")


def split_settings(settings: dict) -> tuple[dict, dict]:
    """(the settings applied before training, the evaluation settings)."""
    trained = {k: v for k, v in settings.items() if not k.startswith("eval.")}
    return trained, {k: v for k, v in settings.items() if k.startswith("eval.")}


def with_settings(params: dict, settings: dict, seeds: list[int] | None = None) -> dict:
    """``params`` with the dotted ``settings`` set (YAML values) and ``train.seeds``, checked."""
    out = json.loads(json.dumps(params))
    for key, value in settings.items():
        set_value(out, key, value, f"setting {key!r}")
    if seeds is not None:
        set_value(out, "train.seeds", list(seeds))
    return validate(out, sections=SECTIONS)


def run_experiment(experiment: Experiment, params: dict, manifest_dir: Path, features_dir: Path,
                   out: Path, seeds: list[int] | None = None, log=print, protocol: str = "standard",
                   test_corpus: tuple[Path, Path] | None = None) -> dict:
    """Train every distinct training setting of ``experiment`` (``seeds``, default the params'),
    score each point on test (every fold's, with ``protocol="loso"``; ``test_corpus``' (manifest
    folder, features folder) with ``protocol="cross"``), and return the result (what
    :func:`write_result` stores)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    seeds = list(seeds or checked(params, SECTIONS)["train"].get("seeds", [0]))
    groups: dict[str, dict] = {}                       # training key -> params and its points
    for name, settings in experiment.points.items():
        trained, _ = split_settings(settings)
        point_params = with_settings(params, trained, seeds)      # every point checked before any work
        key = hashlib.sha256(json.dumps(point_params, sort_keys=True).encode()).hexdigest()
        groups.setdefault(key, {"params": point_params, "points": []})["points"].append(name)
    work = out.with_name(out.name + ".work")          # fold / relabelled manifests, removed at the end
    store = out.parent / TRAINED
    m = manifests.read(manifest_dir)
    train_corpus = m.corpus
    if protocol == "standard":
        rows = score_points(experiment, groups, manifest_dir, features_dir, store, log)
    elif protocol == "cross":
        if test_corpus is None:
            raise ValueError("protocol cross: name the test corpus (--test-manifest and --test-features)")
        train_dir, test_dir = work / "train" / "prepared", work / "test" / "prepared"
        other = manifests.read(test_corpus[0])
        shared = shared_classes(m, other)
        for source, target in ((m, train_dir), (other, test_dir)):
            if not (target / manifests.MANIFEST_FILE).is_file():
                manifests.write(relabelled(source, shared), pd.DataFrame(columns=ERROR_COLUMNS), target)
        rows = score_points(experiment, groups, train_dir, features_dir, store, log,
                            test=(test_dir, test_corpus[1]))
        m = manifests.read(test_dir)
    else:
        folds = {}
        for fold, fold_manifest in session_folds(m):
            fold_dir = work / fold / "prepared"
            if not (fold_dir / manifests.MANIFEST_FILE).is_file():
                manifests.write(fold_manifest, pd.DataFrame(columns=ERROR_COLUMNS), fold_dir)
            tested = int((fold_manifest.table["split"] == "test").sum())
            log(f"{experiment.name}: fold {fold} ({tested} test utterances)")
            folds[fold] = score_points(experiment, groups, fold_dir, features_dir, store, log)
        rows = {name: over_folds({f: r[name] for f, r in folds.items()}) for name in experiment.points}
    for name in rows:
        rows[name]["settings"] = experiment.points[name]
    return {"experiment": experiment.name, "title": experiment.title, "paper": experiment.paper,
            "note": experiment.note, "corpus": m.corpus, "labels": m.labels, "seeds": seeds,
            "protocol": protocol if protocol != "cross" else
            f"cross: trained on {train_corpus}, tested on {m.corpus}",
            "selection": "epoch with the best dev wa-F1 per seed; test scored once per point",
            "figure": experiment.figure, "published": experiment.published,
            "points": [{"point": name, **rows[name]} for name in experiment.points]}


def score_points(experiment: Experiment, groups: dict[str, dict], manifest_dir: Path, features_dir: Path,
                 store: Path, log, test: tuple[Path, Path] | None = None) -> dict[str, dict]:
    """Every point scored on ``manifest_dir``'s test split (``test``: another corpus' manifest and
    features folders), each training group trained once (or found finished in ``store``)."""
    rows: dict[str, dict] = {}
    for number, (key, group) in enumerate(groups.items(), 1):
        inputs = load_inputs(group["params"], manifest_dir, features_dir)
        folder = store / training_key(group["params"], inputs)
        if test is not None:
            tested = load_inputs(group["params"], *test)
            same_features(inputs, tested)
            inputs = tested
        if not (folder / "done").is_file():
            log(f"{experiment.name}: training {number}/{len(groups)} (points {', '.join(group['points'])})")
            train_models(group["params"], manifest_dir, features_dir, folder, log=lambda _: None,
                         reference_protocol=False)
            (folder / "done").write_text("")
        device = str(pick_device(group["params"].get("device", "auto")))
        for name in group["points"]:
            _, evaluation = split_settings(experiment.points[name])
            rows[name] = score_point(checkpoint_paths(folder), inputs, evaluation, device)
            log(f"{experiment.name} {name}: test wa-F1 {describe(rows[name])}")
    return rows


def session_folds(m: manifests.Manifest) -> list[tuple[str, manifests.Manifest]]:
    """IEMOCAP leave-one-session-out: per session, the manifest re-split (test = the session, dev =
    :data:`LOSO_DEV_FRACTION` of the other dialogues by a seeded shuffle, train = the rest)."""
    ids = list(dict.fromkeys(m.table["dialogue_id"]))
    session = {}
    for dialogue in ids:
        found = SESSION.match(dialogue)
        if not found:
            raise ValueError(f"protocol loso: dialogue {dialogue!r} names no IEMOCAP session (Ses01...): "
                             "leave-one-session-out needs IEMOCAP's dialogue ids")
        session[dialogue] = int(found.group(1))
    if len(set(session.values())) < 2:
        raise ValueError("protocol loso: the manifest has one session only")
    folds = []
    for held_out in sorted(set(session.values())):
        rest = sorted(d for d in ids if session[d] != held_out)
        count = max(1, round(LOSO_DEV_FRACTION * len(rest)))
        dev = {rest[i] for i in np.random.default_rng(0).permutation(len(rest))[:count]}
        split = ["test" if session[d] == held_out else "dev" if d in dev else "train"
                 for d in m.table["dialogue_id"]]
        table = m.table.assign(split=split)
        extra = {**m.extra_meta, "protocol": f"loso: session {held_out} held out"}
        folds.append((f"session_{held_out}", manifests.Manifest(table, m.corpus, m.root, m.labels, extra)))
    return folds


def shared_classes(train: manifests.Manifest, test: manifests.Manifest) -> list[str]:
    """The :data:`SHARED_CLASSES` both corpora have (in that order); refuses fewer than two."""
    def has(m: manifests.Manifest, spellings: tuple[str, ...]) -> bool:
        return any(label in spellings for label in m.labels)
    shared = [c for c, spellings in SHARED_CLASSES.items()
              if has(train, spellings) and has(test, spellings)]
    if len(shared) < 2:
        raise ValueError(f"protocol cross: {train.corpus} ({', '.join(train.labels)}) and {test.corpus} "
                         f"({', '.join(test.labels)}) share fewer than two classes of "
                         f"{', '.join(SHARED_CLASSES)}")
    return shared


def relabelled(m: manifests.Manifest, shared: list[str]) -> manifests.Manifest:
    """``m`` with its labels renamed to the shared classes; every other class becomes a context
    label (``context_labels``: its utterances stay in their dialogues, unlabelled)."""
    rename = {spelling: c for c in shared for spelling in SHARED_CLASSES[c]}
    table = m.table.assign(label=[rename.get(label, label) for label in m.table["label"]])
    context = [label for label in m.labels if label not in rename]
    return manifests.Manifest(table, m.corpus, m.root, list(shared),
                              {**m.extra_meta, "relabelled_from": m.labels, "context_labels": context})


def same_features(train: Inputs, test: Inputs) -> None:
    """Cross-corpus scoring needs one feature space: the same extractor, params and width per modality."""
    for modality, meta in train.metas.items():
        other = test.metas[modality]
        for key in ("extractor", "params", "dim"):
            if meta.get(key) != other.get(key):
                raise ValueError(f"protocol cross: the {modality} features differ in {key} "
                                 f"({meta.get(key)!r} for training, {other.get(key)!r} for testing): "
                                 "extract both corpora with the same extractor")


def over_folds(per_fold: dict[str, dict]) -> dict:
    """One point over the folds: each fold's mean over seeds, then mean ± sample std over folds."""
    scored = {f: r for f, r in per_fold.items() if r.get("test_wa_f1")}
    row = {"test_dialogues": sum(r["test_dialogues"] for r in per_fold.values()),
           "test_utterances": sum(r["test_utterances"] for r in per_fold.values()),
           "folds": per_fold}
    if not scored:
        return {**row, "note": "no fold has a test dialogue of this point"}
    first = next(iter(scored.values()))
    return {**row, **{key: seed_stat([r[key]["mean"] for r in scored.values()])
                      for key in ("test_wa_f1", "test_wa_acc", "test_macro_f1", "dev_wa_f1")},
            "selected_epochs": [e for r in scored.values() for e in r["selected_epochs"]],
            "parameters": first["parameters"],
            "confusion": np.sum([r["confusion"] for r in scored.values()], axis=0).tolist()}


def training_key(params: dict, inputs: Inputs) -> str:
    """A trained group's folder name: digests of its checked params, its inputs and the code that
    trains (so an edit to the model never serves an older model)."""
    return "-".join((hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16],
                     inputs_digest(inputs), training_code_digest()))


@functools.cache
def training_code_digest() -> str:
    """sha256 (16 hex digits) of the sources that train and load a model: ``model/``, ``config/``
    and the pipeline modules that read inputs and write model folders."""
    h = hashlib.sha256()
    files = [*sorted(REPO.joinpath("model").rglob("*.py")), *sorted(REPO.joinpath("config").rglob("*.py")),
             *(REPO / "pipeline" / "lib" / f"{name}.py" for name in ("runs", "inputs", "manifest"))]
    for path in files:
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def inputs_digest(inputs: Inputs) -> str:
    """What a trained model depends on besides its params: the manifest and the features' identities."""
    h = hashlib.sha256(inputs.manifest.table.to_csv(index=False).encode())
    h.update(json.dumps({k: v.get("identity") for k, v in inputs.metas.items()}, sort_keys=True,
                        default=str).encode())
    return h.hexdigest()[:16]


def test_dialogues(inputs: Inputs, evaluation: dict) -> list[Dialogue]:
    """The test dialogues a point scores (``eval.dialogue_length`` keeps lo..hi utterances)."""
    m = inputs.manifest
    items = dialogues(m.table, m.labels, "test")
    lo, hi = evaluation.get("eval.dialogue_length", (1, None))
    return [d for d in items if lo <= len(d.rows) and (hi is None or len(d.rows) <= hi)]


def noisy_matrices(inputs: Inputs, items: list[Dialogue], level: float, seed: int) -> dict[str, np.ndarray]:
    """Section 6.5: each modality's test features plus ``level`` x its feature standard deviation
    (one number per modality, over the train split's present vectors) x N(0, 1); other rows and
    absent vectors are left as they are."""
    if not level:
        return inputs.matrices
    m = inputs.manifest
    train_rows = np.flatnonzero((m.table["split"] == "train").to_numpy())
    rows = np.concatenate([d.rows for d in items]) if items else np.zeros(0, int)
    out = {}
    for index, (modality, matrix) in enumerate(inputs.matrices.items()):
        present = inputs.present[modality]
        scale = float(matrix[train_rows[present[train_rows]]].std()) if present[train_rows].any() else 0.0
        noisy = matrix.copy()
        hit = rows[present[rows]]
        rng = np.random.default_rng([NOISE_SEED, seed, index])
        noisy[hit] = matrix[hit] + (level * scale * rng.standard_normal((len(hit), matrix.shape[1]))
                                    ).astype(matrix.dtype)
        out[modality] = noisy
    return out


def score_point(checkpoints: list[Path], inputs: Inputs, evaluation: dict, device: str) -> dict:
    """One point's test scores over the seeds' dev-selected models (with its evaluation settings)."""
    items = test_dialogues(inputs, evaluation)
    row = {"test_dialogues": len(items), "test_utterances": int(sum(len(d.rows) for d in items))}
    if not items:
        return {**row, "note": "no test dialogue matches eval.dialogue_length"}
    reports = []
    for path in checkpoints:
        seed = int(path.name.removeprefix("seed_"))
        matrices = noisy_matrices(inputs, items, float(evaluation.get("eval.noise", 0.0)), seed)
        report, _ = score_checkpoint(path, inputs, device, items=items, matrices=matrices)
        reports.append(report)
    return {**row, "test_wa_f1": seed_stat([r["wa_f1"] for r in reports]),
            "test_wa_acc": seed_stat([r["wa_acc"] for r in reports]),
            "test_macro_f1": seed_stat([r["macro_f1"] for r in reports]),
            "dev_wa_f1": seed_stat([r["dev_wa_f1"] for r in reports]),
            "selected_epochs": [r["selected_epoch"] for r in reports],
            "parameters": reports[0]["parameters"],
            "confusion": np.sum([r["confusion"] for r in reports], axis=0).tolist()}


def describe(row: dict) -> str:
    stat = row.get("test_wa_f1")
    if not stat:
        return "— (" + row.get("note", "no score") + ")"
    spread = f" ± {100 * stat['sample_std']:.2f}" if stat.get("sample_std") is not None else ""
    return f"{100 * stat['mean']:.2f}{spread} (n = {stat['n']})"


def write_result(result: dict, out: Path) -> Path:
    """``<out>.json`` (every number); the work folder of a finished experiment (fold and
    relabelled manifests) is removed; trained models stay in ``.trained/``."""
    path = out.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(out.with_name(out.name + ".work"), ignore_errors=True)
    return path
