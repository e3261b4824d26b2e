"""The train stage's output folder (``data/model``), one module for its layout:

- ``checkpoints/seed_<s>/``: the dev-selected model of one seed's run, a self-describing folder
  (:class:`model.folder.ModelFolder`: config.json, weights.pt read weights-only, provenance.json);
- ``curves/seed_<s>.csv``: one row per epoch (train loss, dev wa-F1, the reference protocol's test
  wa-F1, drop rates), what ``dvc plots`` and :func:`read_curves` read;
- beside the folder, ``<folder>.timings.json`` (:mod:`pipeline.lib.timings`): seconds per epoch and
  seed, kept out of the tracked outputs so that a rerun gives the same bytes.
"""
from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np

from config.schema import checked
from config.train import TrainConfig
from config.vocabulary import PARALLEL_MODES, check_choice
from model import MODELS, distributed
from model.ambdsgdn import GRAPHS
from model.data import Dialogue, dialogues
from model.device import pick_device
from model.distributed import World
from model.folder import ModelFolder
from model.training import Inference, RunResult, infer, train_one
from pipeline.lib.inputs import Inputs, feature_provenance, load_inputs, split_dialogues, trainable_rows
from pipeline.lib.manifest import refuse_crowded_dialogues
from pipeline.lib.metrics import classification_report
from pipeline.lib.timings import read_timings, write_timings

RESUME_DIR = ".resume"   # beside the outputs: a killed seed continues from its last epoch


def train_models(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path,
                 log=print, reference_protocol: bool = True) -> list[dict]:
    """One model per seed of ``train.seeds`` (the train stage): params checked before any work,
    the caches checked against ``extract``; each seed's dev-selected model folder and curves are
    written under ``out_dir``. Returns per seed: seed, selected epoch, dev wa-F1, seconds per epoch.
    Without ``reference_protocol`` the test split is never scored (a sweep on dev)."""
    params = checked(params, ("model", "train", "extract"), defaults=("model", "train"))
    model_params = dict(params["model"])
    name = model_params.pop("name", "ambdsgdn")
    MODELS.get(name)                       # an unknown model is refused before any work
    if name == "ambdsgdn":
        GRAPHS.target(model_params["graph"])   # and an unknown graph variant
    train_params = dict(params["train"])
    seeds = [int(s) for s in train_params.pop("seeds", [0])]
    mode = train_params.pop("parallel", PARALLEL_MODES[0])
    check_choice(mode, PARALLEL_MODES, "train.parallel")
    config = TrainConfig(**train_params, device=params["device"], precision=params["precision"])
    record = dict(vars(config))                               # the provenance's, whatever the rank
    distributed.use_threads(params["threads"])
    world = distributed.current(pick_device(config.device))   # also fails where the device is not there
    if world.size > 1:
        config.device = str(distributed.rank_device(pick_device(config.device), world))
    inputs = load_inputs(params, manifest_dir, features_dir)
    m = inputs.manifest
    model_config = model_config_for(name, model_params, {k: v.shape[1] for k, v in inputs.matrices.items()},
                                    len(m.labels))
    limit = getattr(model_config, "max_speakers", None)        # a model with a speaker table
    if limit is not None:
        refuse_crowded_dialogues(m.table, limit)          # prepare refuses it first in the pipeline
    splits = split_dialogues(m)
    trainable = trainable_rows(inputs)
    # Several launched processes: one seed each (the default), or every seed data-parallel.
    per_seed = world.size > 1 and mode == "seeds"
    mine = world.shard(seeds) if per_seed else seeds
    shared = World() if per_seed else world            # the ranks a training shares its batches with
    summaries, seconds_per_seed = [], {}
    for seed in mine:
        result = train_one(seed, model_config, config, splits, inputs.matrices, inputs.present, trainable,
                           log=log if per_seed else world.main_log(log),
                           reference_protocol=reference_protocol,
                           resume_dir=out_dir / RESUME_DIR / f"seed_{seed}", world=shared)
        seconds_per_seed[str(seed)] = [r["epoch_s"] for r in result.curves]
        if not shared.main:
            continue                                   # rank 0 of a data-parallel run writes
        extra = {"data_parallel_ranks": shared.size} if shared.size > 1 else {}
        checkpoint = save_run(out_dir, result, inputs, record, extra)
        summaries.append({"seed": seed, "selected_epoch": checkpoint["selected_epoch"],
                          "dev_wa_f1": checkpoint["dev_wa_f1"],
                          "epoch_s": float(np.mean([r["epoch_s"] for r in result.curves]))})
        log(f"seed {seed}: selected epoch {checkpoint['selected_epoch']} "
            f"(dev wa-F1 {checkpoint['dev_wa_f1']:.4f}) -> {checkpoint_path(out_dir, seed)}")
    if per_seed:                                       # rank 0 reports and times every seed
        reports = distributed.gather((summaries, seconds_per_seed), world)
        if not world.main:
            return []
        summaries = sorted((s for part, _ in reports for s in part), key=lambda s: seeds.index(s["seed"]))
        seconds_per_seed = {k: v for _, part in reports for k, v in part.items()}
    else:
        distributed.barrier(world)                     # every rank's resume state removed
        if not world.main:
            return []
    with contextlib.suppress(OSError):                 # left empty by finished seeds
        (out_dir / RESUME_DIR).rmdir()
    write_timings(out_dir, {"epoch_s": seconds_per_seed, **({"processes": world.size, "parallel": mode}
                                                             if world.size > 1 else {})})
    return summaries


def model_config_for(name: str, model_params: dict, input_dims: dict[str, int], num_classes: int):
    """The config of model ``name`` from the ``model`` params: AMB-DSGDN's keys at the top of the
    section, another model's under its name (``model.ar_iigcn``)."""
    own = {k: v for k, v in model_params.items() if k not in MODELS.names()}
    if name != "ambdsgdn":
        own = dict(model_params.get(name) or {})
    return MODELS.get(name).config_class(input_dims=input_dims, num_classes=num_classes, **own)


def save_run(out_dir: Path, result: RunResult, inputs: Inputs, train_config: dict,
             extra: dict | None = None) -> dict:
    """Write one seed's model folder and curves; returns its provenance (``extra`` added to it)."""
    m, run = inputs.manifest, result.checkpoint
    provenance = {"seed": run["seed"], "selected_epoch": run["selected_epoch"],
                  "dev_wa_f1": run["dev_wa_f1"], "train_dialogues": run["train_dialogues"],
                  "train_config": train_config, **(extra or {})}
    ModelFolder.from_state(model=run["model"], model_config=run["model_config"], state_dict=run["state_dict"],
                           labels=m.labels, corpus=m.corpus, features=feature_provenance(inputs.metas),
                           provenance=provenance).save_pretrained(checkpoint_path(out_dir, result.seed))
    (out_dir / "curves").mkdir(exist_ok=True)
    with open(out_dir / "curves" / f"seed_{result.seed}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[k for k in result.curves[0] if k != "epoch_s"],
                                extrasaction="ignore")   # seconds: timings, not results
        writer.writeheader()
        writer.writerows(result.curves)
    return provenance


def checkpoint_path(models_dir: Path, seed: int) -> Path:
    """The model folder of one seed."""
    return models_dir / "checkpoints" / f"seed_{seed}"


def checkpoint_paths(models_dir: Path) -> list[Path]:
    """Every seed's model folder, sorted; refuses a folder without any."""
    paths = sorted(p for p in (models_dir / "checkpoints").glob("seed_*") if p.is_dir())
    if not paths:
        raise ValueError(f"{models_dir}/checkpoints: no seed_*/ model folder (run the train stage)")
    return paths


def read_curves(checkpoint: Path) -> list[dict]:
    """The curves written with ``checkpoint`` (rows of strings, one per epoch)."""
    curves = checkpoint.parent.parent / "curves" / f"{checkpoint.name}.csv"
    if not curves.is_file():
        raise ValueError(f"{curves}: missing (written by the train stage with {checkpoint.name})")
    with open(curves) as fh:
        return list(csv.DictReader(fh))


def epoch_seconds(models_dir: Path) -> dict[int, float]:
    """Seed -> mean seconds per epoch, as the train stage measured them ({} where not recorded)."""
    per_seed = read_timings(models_dir).get("epoch_s", {})
    return {int(seed): float(np.mean(seconds)) for seed, seconds in per_seed.items() if seconds}


def warm_up_epochs(provenance: dict) -> int | None:
    """The epochs trained before adaptive modality dropout began (None: it never did)."""
    train = provenance.get("train_config") or {}
    if not train.get("modality_dropout") or "warm_up_epochs" not in train:
        return None
    return int(train["warm_up_epochs"])


def score_checkpoint(path: Path, inputs: Inputs, device: str = "cpu", items: list[Dialogue] | None = None,
                     matrices: dict[str, np.ndarray] | None = None) -> tuple[dict, Inference]:
    """The dev-selected model of one seed scored on the test split (or on ``items``, with
    ``matrices`` in place of the inputs' features): the classification report plus the seed,
    selected epoch, dev score, features, train dialogue count and parameter count it recorded, and
    the per-utterance outputs behind it."""
    m = inputs.manifest
    folder = ModelFolder.from_pretrained(path, device)
    model, config, provenance = folder.model, folder.config, folder.provenance
    if folder.labels != m.labels:
        raise ValueError(f"{path}: trained on labels {folder.labels}, manifest has {m.labels}")
    test = dialogues(m.table, m.labels, "test") if items is None else items
    matrices = inputs.matrices if matrices is None else matrices
    out = infer(model, test, {k: matrices[k] for k in model.modalities}, inputs.present, 16, device)
    labelled = out.gold >= 0               # an unlabelled context utterance (label -1) is not scored
    report = {**classification_report(out.gold[labelled], out.predicted[labelled], m.labels),
              "selected_epoch": provenance["selected_epoch"], "seed": provenance["seed"],
              "dev_wa_f1": provenance["dev_wa_f1"], "features": config["features"],
              "train_dialogues": len(provenance.get("train_dialogues", [])),
              "warm_up_epochs": warm_up_epochs(provenance),
              "parameters": sum(p.numel() for p in model.parameters())}
    return report, out
