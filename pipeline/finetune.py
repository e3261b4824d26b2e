"""Stage ``finetune``: manifest -> data/finetuned/text/, a text encoder fine-tuned on the train split.

    python -m pipeline.finetune [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--out data/finetuned/text]

Reads ``finetune`` (``enabled``, ``base_model``, ``pooling``, ``context_turns``, ``max_length``,
``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``warmup_ratio``, ``dropout``,
``class_weights``, ``evals_per_epoch``, ``patience``, ``seed``, ``crossfit_folds``), ``device``
and ``precision``. With
``enabled: false`` (the default) it writes only a ``finetune.json`` saying so. Otherwise the
encoder is fine-tuned for utterance emotion classification on the train split, selected on dev
(:mod:`extractors.text.finetune`), and saved where ``from_pretrained`` reads it: point
``extract.text.transformers.model`` at the output folder to extract with it. ``crossfit_folds`` k > 1
also fine-tunes k encoders, each without one fold of the train dialogues (``crossfit/``), and the
extractor encodes each train utterance with the one that never saw it (out-of-fold train features).
A killed run resumes after its last finished epoch; a finished encoder is not fine-tuned again.
The work happens in a folder beside the output (:func:`work_dir`), renamed to the output when it is
finished: ``dvc repro`` deletes a stage's output before it runs the stage again, which would
otherwise throw away a killed run's progress.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from config.finetune import FinetuneConfig
from config.params import load_params
from config.schema import checked
from extractors import params_extensions
from extractors.text.finetune import finetune_with_folds, write_disabled
from model.device import pick_device
from model.distributed import use_threads
from pipeline.cli import stage_main
from pipeline.lib import manifest
from pipeline.lib.timings import write_timings

# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("finetune",)


def run(params: dict, manifest_dir: Path, out_dir: Path, progress: bool = True) -> dict:
    params = checked(params, SECTIONS, defaults=("finetune",))
    section = dict(params["finetune"])
    if not section.pop("enabled"):
        write_disabled(out_dir)
        print(f"finetune: disabled (finetune.enabled: false) -> {out_dir}/finetune.json only")
        return {"enabled": False}
    folds = section.pop("crossfit_folds")
    if folds < 0 or folds == 1:   # one fold would hold out the whole train split
        raise ValueError(f"finetune.crossfit_folds={folds}: 0 (off) or the number of folds (>= 2)")
    config = FinetuneConfig(**section, precision=params["precision"])
    pick_device(params["device"])   # fails at once where the device is not there
    use_threads(params["threads"])  # a CPU fine-tuning's last bits depend on the thread count
    m = manifest.read(manifest_dir)
    work = work_dir(out_dir)
    if out_dir.is_dir() and not work.exists():
        out_dir.rename(work)   # an earlier output: what it holds already is not fine-tuned again
    provenance = finetune_with_folds(m.table, m.labels, config, work, folds=folds, device=params["device"],
                                     progress=progress)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)
    minutes = provenance.get("minutes")      # None: found finished, nothing trained now
    fold_minutes = provenance.get("crossfit_minutes")
    if minutes is not None:
        write_timings(out_dir, {"minutes": minutes, "crossfit_minutes": fold_minutes})
    if "crossfit" in provenance:
        print("finetune: cross-fitted train features from " + ", ".join(
            f"fold {i} (dev wa-F1 {s['dev_wa_f1']:.4f}, {_minutes(m)})" for i, (s, m) in
            enumerate(zip(provenance["crossfit"]["selected"], fold_minutes or [None] * folds))))
    selected = provenance["selected"]
    print(f"finetune: {config.base_model} on {provenance['corpus']} ({provenance['train_utterances']} "
          f"train utterances, {provenance['dev_utterances']} dev) in {_minutes(minutes)}; "
          f"selected epoch {selected['epoch']} step {selected['step']} (dev wa-F1 "
          f"{selected['dev_wa_f1']:.4f}) -> {out_dir} (set extract.text.transformers.model: {out_dir})")
    return provenance


def _minutes(minutes: float | None) -> str:
    return "(already done)" if minutes is None else f"{minutes:.1f} min"


def work_dir(out_dir: Path) -> Path:
    """Where the stage fine-tunes: beside ``out_dir``, outside what DVC deletes before a rerun."""
    return out_dir.with_name(f".{out_dir.name}.partial")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("data/finetuned/text"))


def run_cli(args: argparse.Namespace) -> None:
    run(load_params(args.params, args.overrides, params_extensions(), SECTIONS), args.manifest, args.out)


main = stage_main("finetune", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
