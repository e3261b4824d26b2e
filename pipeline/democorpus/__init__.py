"""Deterministic demo corpus in the real IEMOCAP / MELD.Raw release layouts.

The generative story (who speaks, what they feel, how each modality shows it) is documented in
:mod:`pipeline.democorpus.story`; the layouts in :mod:`~pipeline.democorpus.iemocap_layout` and
:mod:`~pipeline.democorpus.meld_layout`. Same params + seed -> the same files.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from config.demo import IemocapDemo, MeldDemo, StoryParams
from config.registry import Registry
from config.vocabulary import MODALITIES
from pipeline.democorpus import iemocap_layout, meld_layout

# layout name -> writer(out_dir, rng, story, section params, log) -> corpus root
LAYOUTS: Registry[Callable[..., Path]] = Registry("demo.layout", "layout")


def story_params(params: dict) -> StoryParams:
    reliability = {**StoryParams().reliability, **params.get("reliability", {})}
    unknown = set(reliability) - set(MODALITIES)
    if unknown:
        raise ValueError(f"demo.story.reliability: unknown modality {sorted(unknown)[0]!r}")
    for key, value in reliability.items():
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"demo.story.reliability.{key}={value}: must be in [0, 1]")
    return StoryParams(**{**{k: v for k, v in params.items() if k != "reliability"},
                          "reliability": reliability})


def generate(layout: str, out_dir: Path, seed: int, story: dict | None = None,
             iemocap: dict | None = None, meld: dict | None = None,
             log: Callable[[str], None] | None = None) -> Path:
    """Write the demo corpus in ``layout`` under ``out_dir`` (emptied first); return its root."""
    write = LAYOUTS.get(layout)
    rng = np.random.default_rng(seed)
    section = {"iemocap": iemocap, "meld": meld}.get(layout) or {}   # demo.<layout>
    return write(out_dir, rng, story_params(story or {}), section, log)


def _fresh(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)


@LAYOUTS.register("iemocap")
def _write_iemocap(out_dir: Path, rng: np.random.Generator, story: StoryParams, section: dict,
                   log: Callable[[str], None] | None) -> Path:
    _fresh(out_dir / iemocap_layout.ROOT_NAME)
    cfg = IemocapDemo(**section)
    return iemocap_layout.write(out_dir, rng, sessions=int(cfg.sessions),
                                dialogues_per_session=int(cfg.dialogues_per_session),
                                turns=_range(cfg.turns, "demo.iemocap.turns"),
                                unlabelled=float(cfg.unlabelled), story=story, log=log)


@LAYOUTS.register("meld")
def _write_meld(out_dir: Path, rng: np.random.Generator, story: StoryParams, section: dict,
                log: Callable[[str], None] | None) -> Path:
    _fresh(out_dir / meld_layout.ROOT_NAME)
    cfg = MeldDemo(**section)
    dialogues = {s: int({**MeldDemo().dialogues, **cfg.dialogues}[s]) for s in ("train", "dev", "test")}
    if dialogues["train"] < 3 or dialogues["dev"] < 2 or dialogues["test"] < 1:
        raise ValueError("demo.meld.dialogues: need at least 3 train, 2 dev and 1 test dialogues")
    return meld_layout.write(out_dir, rng, dialogues=dialogues,
                             turns=_range(cfg.turns, "demo.meld.turns", minimum=2), story=story,
                             log=log)


def _range(value, key: str, minimum: int = 1) -> tuple[int, int]:
    lo, hi = (int(v) for v in value)
    if not minimum <= lo <= hi:
        raise ValueError(f"{key}={list(value)}: need {minimum} <= min <= max")
    return lo, hi
