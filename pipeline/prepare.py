"""Stage ``prepare``: corpus root -> data/prepared/ (manifest, meta, errors, summary).

    python -m pipeline.prepare [--params params.yaml] [--set key=value ...] [--out data/prepared]

Reads the ``prepare`` section of params.yaml: ``corpus`` (auto | iemocap | meld | csv; auto tells
them apart by the layout of ``root``), ``root``,
``on_missing_media``, ``probe_media``, ``encoding`` and the adapter's own section (``prepare.iemocap``,
``prepare.meld`` or ``prepare.csv``), and the run's ``modalities`` (whose text/media are checked).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from config.model import ModelConfig
from config.params import load_params
from config.prepare import PrepareOptions
from config.schema import validate
from config.vocabulary import MODALITIES
from pipeline.cli import choices_epilog, stage_main
from pipeline.corpora import ADAPTERS, adapter_params, detect_corpus, params_extensions
from pipeline.lib import manifest

# The params sections this stage reads (validated once: by the CLI, or by run() for a library caller).
SECTIONS = ("prepare",)


def run(params: dict, out_dir: Path, modalities: Sequence[str] = MODALITIES, checked: bool = False,
        max_speakers: int | None = None) -> dict:
    """Build, validate and write the manifest described by a ``prepare`` params section, checking
    the text/media of ``modalities``; ``checked``: the section comes from
    :func:`config.params.load_params` (with the adapters' extensions), so it is not checked again."""
    if not checked:
        params = validate({"prepare": params, "modalities": list(modalities)}, extensions=params_extensions(),
                          sections=SECTIONS)["prepare"]
    options = PrepareOptions.from_params(params, modalities)
    for key in ("corpus", "root"):
        if not params.get(key):
            raise manifest.ManifestError(f"params: prepare.{key} is required")
    corpus = params["corpus"]
    if corpus == "auto":
        corpus = detect_corpus(params["root"])
        print(f"prepare.corpus=auto: {params['root']} is read as a {corpus} corpus")
    adapter_params = params.get(corpus) or {}   # the adapter's own section (checked, defaults filled in)
    result, log = ADAPTERS.get(corpus)(Path(params["root"]), options, **adapter_params)
    refuse_missing_splits(result, corpus, params["root"])
    if max_speakers is not None:
        manifest.refuse_crowded_dialogues(result.table, max_speakers)
    summary = manifest.write(result, log.table(), out_dir)
    print(f"prepared {corpus} corpus at {params['root']} -> {out_dir}")
    print(manifest.format_summary(summary))
    for warning in manifest.coverage_warnings(summary, options.modalities):
        print(warning)
    if log.rows:
        problems = log.table().groupby(["problem", "action"]).size()
        for (problem, action), n in problems.items():
            print(f"  {n} x {problem} -> {action}")
        print(f"  details: {out_dir / manifest.ERRORS_FILE}")
    return summary


def refuse_missing_splits(m: manifest.Manifest, corpus: str, root: str) -> None:
    """Train selects on dev and evaluate scores test: a manifest without labelled dialogues in
    one of the splits is refused now, naming the split and the params that shape it, not after
    every extraction has run."""
    labelled = m.table[m.table["label"].isin(m.labels)]
    missing = [split for split in manifest.SPLITS if not (labelled["split"] == split).any()]
    if missing:
        shaping = [f"prepare.{corpus}.{key}" for key in adapter_params(corpus).keys
                   if any(word in key for word in ("dev", "test", "split", "session"))]
        how = ", ".join(shaping) if shaping else "the corpus' own split lists (a CSV's split column)"
        raise manifest.ManifestError(
            f"prepare: the {corpus} corpus at {root} has no labelled {' or '.join(missing)} dialogues "
            f"(train selects on dev, evaluate scores test); they come from {how}")


def max_speakers_param(params: dict) -> int:
    """``model.max_speakers`` (AMB-DSGDN's speaker table), the one model param prepare reads: read
    alone, so that prepare depends on no other model param (dvc.yaml lists only this one)."""
    value = (params.get("model") or {}).get("max_speakers", ModelConfig.max_speakers)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.max_speakers={value!r}: must be a whole number >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    parser.epilog = choices_epilog({"prepare.corpus": ["auto", *ADAPTERS.names()]})


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    section = params.get("prepare")
    run(section or {}, args.out, params["modalities"], checked=section is not None,
        max_speakers=max_speakers_param(params))


main = stage_main("prepare", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
