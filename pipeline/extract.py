"""Stage ``extract@<modality>``: manifest -> data/features/<modality>/ (see extractors.cache).

    python -m pipeline.extract text|audio|visual [--params params.yaml] [--set key=value ...]
        [--manifest data/prepared] [--out data/features/<modality>]

Reads ``extract.<modality>``: ``name`` (a registered extractor), the params of each extractor family
under its own name (``extract.audio.opensmile: {feature_set: IS10}``; only the chosen one is used),
``on_failure`` (mask | drop), ``max_failed_fraction``, ``chunk_size``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from extractors import get_extractor, section_params
from extractors.base import ExtractorError
from extractors.runner import ExtractionError, extract
from pipeline import manifest
from pipeline.manifest import MODALITIES
from pipeline.params import add_params_arguments, load_section


@dataclass(frozen=True)
class ExtractSection:
    """One ``extract.<modality>`` section."""

    name: str | None = None           # a registered extractor (required by the stage)
    on_failure: str = "mask"          # mask | drop
    max_failed_fraction: float = 0.1  # stop if more utterances than this fail
    chunk_size: int = 128             # utterances per resumable chunk


def run(modality: str, section: dict, manifest_dir: Path, out_dir: Path, progress: bool = True) -> dict:
    """Extract one modality's features for the manifest in ``manifest_dir`` into ``out_dir``."""
    if modality not in MODALITIES:
        raise ExtractorError(f"unknown modality {modality!r} (expected one of {', '.join(MODALITIES)})")
    from pipeline.schema import schema, validate_section

    section = validate_section(schema()["extract"].children[modality], section, f"extract.{modality}")
    config = ExtractSection(**{f.name: section[f.name] for f in fields(ExtractSection)})
    if not config.name:
        raise ExtractorError(f"params: extract.{modality}.name is required")
    m = manifest.read(manifest_dir)
    params = section_params(section)
    extractor = get_extractor(modality, config.name, params)
    meta = extract(m.table, m.media_path, extractor, out_dir, params=params,
                   chunk_size=config.chunk_size, on_failure=config.on_failure,
                   max_failed_fraction=config.max_failed_fraction, progress=progress)
    t = meta["timings"]
    print(f"extract {modality}: {config.name} -> {out_dir}: {meta['n_ok']}/{meta['n_utterances']} "
          f"utterances, dim {extractor.dim}, {meta['n_failed']} failed, {meta['reused']} reused, "
          f"{t['utt_per_s']:.1f} utt/s (load {t['load_s']:.1f} s, model {t['model_s']:.1f} s), "
          f"{meta['constant_dims']['count']} constant dims"
          + "".join(f", {c}: {v['total']} in {v['utterances']} utterances"
                    for c, v in meta["load_stats"].items()))
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=MODALITIES)
    add_params_arguments(parser)
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        section = load_section("extract", args.params, args.overrides).get(args.modality) or {}
        run(args.modality, section, args.manifest, args.out or Path("data/features") / args.modality)
    except (ExtractorError, ExtractionError, manifest.ManifestError, KeyError, ValueError,
            FileNotFoundError) as exc:
        print(f"extract {args.modality}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
