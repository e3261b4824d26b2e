"""Stage ``experiment``: one of the paper's experiments (``benchmarks/paper/experiments/*.yaml``)
on one corpus -> its table and figure.

    python -m pipeline.experiment run EXPERIMENT.yaml [--params params.yaml] [--set key=value ...]
        [--manifest data/prepared] [--features data/features] --out results/<corpus>/<name>
        [--seeds 0 1 2] [--protocol standard|loso|cross] [--test-manifest DIR --test-features DIR]
        [--label TEXT] [--published iemocap|meld] [--command TEXT]
    python -m pipeline.experiment render results/<corpus>/<name>.json [--label ...] [--published ...]

``run`` trains every distinct training setting of the experiment's points (one model per seed,
epoch selected on dev), scores each point on test (with its test-time settings: noise, dialogue
lengths) and writes ``<out>.json`` (every number), ``<out>.md`` (the paper's table, its own figures
beside ours where ``--published`` names them) and ``<out>.png`` (the figure). ``--protocol loso``:
IEMOCAP's leave-one-session-out folds instead of the manifest's split (mean ± std over folds);
``--protocol cross``: trained on this corpus, tested on the ``--test-manifest`` corpus' test split
(the classes both share; features of the same extractor from ``--test-features``).
``render`` redraws the Markdown and PNG from a ``.json``, with the label, published figures and
command the run recorded unless given. Experiment file format:
:mod:`pipeline.lib.experiments`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from config.params import load_params
from extractors import params_extensions
from pipeline.cli import stage_main
from pipeline.lib.experiment_report import figure, markdown
from pipeline.lib.experiments import PROTOCOLS, SECTIONS, read_experiment, run_experiment, write_result
from pipeline.lib.timings import write_timings


def render(result_path: Path, label: str | None = None, published: str | None = None,
           command: str | None = None) -> None:
    """Redraw ``<stem>.md`` and ``<stem>.png`` from ``<stem>.json``; a presentation argument left
    out (None) is the one the run recorded in the result (``presentation``)."""
    result = json.loads(Path(result_path).read_text())
    recorded = result.get("presentation", {})
    label = recorded.get("label", "") if label is None else label
    published = recorded.get("published") if published is None else published
    command = recorded.get("command", "") if command is None else command
    stem = Path(result_path).with_suffix("")
    table = markdown(result, corpus_label=label, published=published, command=command)
    stem.with_suffix(".md").write_text(table)
    figure(result, stem.with_suffix(".png"), corpus_label=label, published=published, command=command)
    print(f"{result['experiment']}: -> {stem.with_suffix('.md')}, {stem.with_suffix('.png')}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("run", "render"))
    parser.add_argument("path", type=Path, help="run: the experiment file; render: a result .json")
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, help="run: results/<corpus>/<name> (.json, .md, .png)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="standard")
    parser.add_argument("--test-manifest", type=Path, help="cross: the test corpus' prepared folder")
    parser.add_argument("--test-features", type=Path, help="cross: the test corpus' features folder")
    parser.add_argument("--label", help="the corpus as titles name it (render: default as run)")
    parser.add_argument("--published", choices=("iemocap", "meld"), default=None,
                        help="show the paper's figures for this corpus beside ours (render: default as run)")
    parser.add_argument("--command", help="the command printed under the table (render: default as run)")


def run_cli(args: argparse.Namespace) -> None:
    if args.action == "render":
        render(args.path, args.label, args.published, args.command)
        return
    if args.out is None:
        raise ValueError("run: --out results/<corpus>/<name> is required")
    experiment = read_experiment(args.path)
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    started = time.perf_counter()
    test_corpus = None
    if args.protocol == "cross":
        if args.test_manifest is None or args.test_features is None:
            raise ValueError("--protocol cross needs --test-manifest and --test-features (the test corpus)")
        test_corpus = (args.test_manifest, args.test_features)
    result = run_experiment(experiment, params, args.manifest, args.features, args.out, args.seeds,
                            protocol=args.protocol, test_corpus=test_corpus)
    result["presentation"] = {"label": args.label or "", "published": args.published,
                              "command": args.command or ""}      # what render redraws with
    path = write_result(result, args.out)
    write_timings(path, {"minutes": (time.perf_counter() - started) / 60})   # beside, untracked
    render(path)                          # with the presentation just recorded


main = stage_main("experiment", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
