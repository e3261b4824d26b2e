"""Stage ``export``: our manifest and feature caches as a released feature file, for the models
that read those layouts (AMB-DSGDN/SDT, DialogueGCN/MMGCN, COSMIC).

    python -m pipeline.export [--params params.yaml] [--set key=value ...] [--format amb_dsgdn]
        [--manifest data/prepared] [--features data/features] [--out data/export]

Reads ``export`` (``enabled``, ``format``: amb_dsgdn | mmgcn | cosmic; ``--format`` runs it whatever
``enabled`` says), ``modalities`` and ``extract`` (the caches are checked against it). Writes
``<out>/<corpus>_<format>.pkl`` and its sidecar ``.pkl.json`` (each modality's extractor identity,
the pickle's sha256, corpus, split lists, label map, what was left out, the project version):
:mod:`pipeline.lib.exported`. Disabled, it writes only ``<out>/export.json`` saying so.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from config.export import ExportConfig
from config.params import load_params
from config.schema import checked
from extractors import params_extensions
from extractors.feature_pickles import FeatureFileError
from pipeline.cli import stage_main
from pipeline.lib.exported import export
from pipeline.lib.inputs import load_inputs

SECTIONS = ("export", "extract")
OFF_FILE = "export.json"


def run(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path, fmt: str | None = None) -> dict:
    """Export (or, disabled and no ``fmt`` given, write the marker saying it is off)."""
    params = checked(params, SECTIONS, defaults=("export",))
    config = ExportConfig(**{**params["export"], **({"format": fmt, "enabled": True} if fmt else {})})
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    if not config.enabled:
        marker = {"enabled": False, "how": "set export.enabled: true (or run with --format)"}
        (out_dir / OFF_FILE).write_text(json.dumps(marker, indent=2) + "\n")
        print(f"export: off (export.enabled: false) -> {out_dir / OFF_FILE}")
        return marker
    inputs = load_inputs(params, manifest_dir, features_dir)
    out = out_dir / f"{inputs.manifest.corpus}_{config.format}.pkl"
    try:
        sidecar = export(inputs, config.format, out)
    except FeatureFileError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise ValueError(str(exc)) from None
    counts = {split: len(ids) for split, ids in sidecar["splits"].items()}
    print(f"export: {counts['train']} train / {counts['test']} test dialogues, "
          f"{', '.join(sidecar['items'])} -> {out} (sha256 {sidecar['sha256'][:16]}), {out}.json")
    return sidecar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default=None, help="amb_dsgdn | mmgcn | cosmic (default: export.format)")
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("data/export"))


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    run(params, args.manifest, args.features, args.out, args.format)


main = stage_main("export", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
