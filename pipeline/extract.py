"""Stage ``extract@<modality>``: manifest -> data/features/<modality>/ (see extractors.cache).

    python -m pipeline.extract text|audio|visual [--params params.yaml] [--set key=value ...]
        [--manifest data/prepared] [--out data/features/<modality>] [--store DIR]

Reads ``extract.<modality>``: ``name`` (a registered extractor), the params of each extractor family
under its own name (``extract.audio.opensmile: {feature_set: IS10}``; only the chosen one is used),
``on_failure`` (mask | drop), ``max_failed_fraction``, ``chunk_size``; and the top-level
``modalities`` (a modality not listed does no work: its output only says so), ``device`` and
``precision``.
Under ``torchrun --nproc_per_node N`` (the top-level ``launcher`` param; docs/parallel.md) each
process computes a deterministic shard into the feature store and rank 0 assembles the cache: the
same files a single process writes.
Vectors come from the feature store (``--store``, default ``$AMBDSGDN_FEATURE_STORE`` or
``~/.cache/ambdsgdn-erc/features``) where they were computed before; only the rest is computed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from config.extract import ExtractSection
from config.params import load_params
from config.schema import schema, validate_section
from config.vocabulary import DEFAULT_PRECISION, MODALITIES
from extractors import families, get_extractor, params_extensions, section_params
from extractors.base import ExtractorError
from extractors.cache import write_unused
from extractors.runner import extract
from extractors.store import FeatureStore
from model import distributed
from model.device import pick_device
from pipeline.cli import choices_epilog, stage_main
from pipeline.lib import manifest

# The params sections this stage reads (validated once: by the CLI, or by run() for a library caller).
SECTIONS = ("extract",)


def run(modality: str, section: dict, manifest_dir: Path, out_dir: Path, progress: bool = True, *,
        modalities: Sequence[str] = MODALITIES, device: str = "auto", precision: str = DEFAULT_PRECISION,
        store: FeatureStore | None = None, checked: bool = False) -> dict:
    """Extract one modality's features for the manifest in ``manifest_dir`` into ``out_dir``;
    ``checked``: ``section`` comes from :func:`config.params.load_params` (with the families'
    extensions), so it is not checked again."""
    if modality not in MODALITIES:
        raise ExtractorError(f"unknown modality {modality!r} (expected one of {', '.join(MODALITIES)})")
    world = distributed.current(pick_device(device))   # also fails at once where the device is not there
    if modality not in modalities:
        if world.main:
            write_unused(out_dir, modality, list(modalities))
            print(f"extract {modality}: not in modalities {list(modalities)}: nothing to do -> {out_dir}")
        return {"modality": modality, "unused": True}
    if not checked:
        spec = schema(["extract"])["extract"].children[modality]
        section = validate_section(spec, section, f"extract.{modality}", params_extensions([modality]))
    device = str(distributed.rank_device(pick_device(device), world))
    config = ExtractSection(**{f.name: section[f.name] for f in fields(ExtractSection)})
    if not config.name:
        raise ExtractorError(f"params: extract.{modality}.name is required")
    m = manifest.read(manifest_dir)
    params = section_params(section)
    extractor = get_extractor(modality, config.name, params, device, precision)
    store = store or FeatureStore()
    meta = extract(m.table, m.media_path, extractor, out_dir, params=params, store=store,
                   chunk_size=config.chunk_size, on_failure=config.on_failure,
                   max_failed_fraction=config.max_failed_fraction, progress=progress,
                   labelled=m.labelled, world=world)
    if meta is None:                       # another rank than 0: its shard is in the store
        return {"modality": modality, "rank": world.rank}
    t = meta["timings"]
    print(f"extract {modality}: {config.name} -> {out_dir}: {meta['n_ok']}/{meta['n_utterances']} "
          f"utterances, dim {extractor.dim}, {meta['n_failed']} failed, {meta['reused']} from the "
          f"store ({store.root}), {meta['computed']} computed at "
          f"{t['utt_per_s']:.1f} utt/s (lookup {t['lookup_s']:.1f} s, load {t['load_s']:.1f} s, "
          f"model {t['model_s']:.1f} s, total {t['total_s']:.1f} s), "
          f"{meta['constant_dims']['count']} constant dims"
          + "".join(f", {c}: {v['total']} in {v['utterances']} utterances"
                    for c, v in meta["load_stats"].items())
          + "".join(f"\n  rank {r['rank']}: {r['computed']} computed, {r['reused']} from the store, "
                    f"{r['timings']['total_s']:.1f} s" for r in meta.get("ranks", [])))
    return meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = choices_epilog({f"extract.{m}.name": families(m) for m in MODALITIES})
    parser.add_argument("modality", choices=MODALITIES)
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=None,
                        help="feature store root (default: $AMBDSGDN_FEATURE_STORE or "
                             "~/.cache/ambdsgdn-erc/features)")


def run_cli(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(args.params, args.overrides, params_extensions([args.modality]), SECTIONS)
    section = (params.get("extract") or {}).get(args.modality)
    try:
        run(args.modality, section or {}, args.manifest, args.out or Path("data/features") / args.modality,
            modalities=params["modalities"], device=params["device"], precision=params["precision"],
            store=FeatureStore(args.store), checked=section is not None)
    finally:
        distributed.finish()


main = stage_main(lambda args: f"extract@{args.modality}", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
