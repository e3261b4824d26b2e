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

Protocols (:data:`PROTOCOLS`): ``standard``, the manifest's own train/dev/test split; ``loso``
and ``cross``: :mod:`pipeline.lib.protocols`.
"""
from __future__ import annotations

import functools
import hashlib
import json
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
from pipeline.lib.metrics import format_stat, seed_stat
from pipeline.lib.protocols import over_folds, relabelled, same_features, session_folds, shared_classes
from pipeline.lib.runs import checkpoint_paths, score_checkpoint, train_models

# The params sections a point may set (validated; any other passes through unchecked).
SECTIONS = ("model", "train", "extract")
EVAL_KEYS = ("eval.noise", "eval.dialogue_length")
FIGURES = ("bars", "line", "heatmap", "confusion")
REPO = Path(__file__).resolve().parents[2]
TRAINED = ".trained"       # beside the results: trained models by training_key
NOISE_SEED = 7919          # the test-time noise draw (per model seed and modality; reproducible)
PROTOCOLS = ("standard", "loso", "cross")


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
        folder = store / training_key(key, inputs)
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


def training_key(params_digest: str, inputs: Inputs) -> str:
    """A trained group's folder name: the digest of its checked params (the group's key), of its
    inputs and of the code that trains (so an edit to the model never serves an older model)."""
    return "-".join((params_digest[:16], inputs_digest(inputs), training_code_digest()))


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
    return format_stat(stat) if stat else "— (" + row.get("note", "no score") + ")"


def write_result(result: dict, out: Path) -> Path:
    """``<out>.json`` (every number); the work folder of a finished experiment (fold and
    relabelled manifests) is removed; trained models stay in ``.trained/``."""
    path = out.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(out.with_name(out.name + ".work"), ignore_errors=True)
    return path
