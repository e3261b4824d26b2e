"""An experiment's result (:mod:`pipeline.lib.experiments`) as the paper's table or figure:
Markdown (one row per point, the paper's own figures beside ours) and a PNG.

Figure kinds (the experiment file's ``figure``): ``bars`` (one pair of bars per point, Tables 4-6),
``line`` (a numeric setting ``x`` on the horizontal axis, one line per ``series`` value and metric:
Figs. 3-5), ``heatmap`` (wa-F1 over settings ``x`` × ``y``, Table 7; without ``y``, rows are the
``series`` values × metric, Fig. 7) and ``confusion`` (each point's confusion matrix summed over
seeds, Fig. 8). A point without a score (e.g. no test dialogue of its length) is drawn as a gap.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from pipeline.lib.metrics import format_stat
from pipeline.lib.plots import draw_confusion, pyplot

METRICS = (("test_wa_f1", "wa-F1"), ("test_wa_acc", "wa-ACC"))


def cell(stat: dict | None) -> str:
    """mean ± sample std in percent ("—" without a score)."""
    return format_stat(stat, with_n=False)


def settings_text(settings: dict) -> str:
    """``key=value, ...`` with lists and mappings in YAML's flow style (``[text, audio]``)."""
    def text(value) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, list):
            return "[" + ", ".join(map(text, value)) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
        return str(value)
    return ", ".join(f"{k}={text(v)}" for k, v in settings.items()) or "(the params as they are)"


def published_for(result: dict, corpus: str | None) -> tuple[str | None, dict]:
    """The paper's figures to show beside ours: ``corpus``' (iemocap | meld), else none."""
    published = result.get("published") or {}
    if corpus and corpus in published:
        return corpus, published[corpus]
    return None, {}


def markdown(result: dict, *, corpus_label: str = "", published: str | None = None, command: str = "") -> str:
    """The result as a Markdown section; ``published``: whose paper figures go beside ours."""
    which, paper = published_for(result, published)
    title = f"### {result['title']}" + (f" — {corpus_label}" if corpus_label else "")
    lines = [title, "",
             f"{result.get('paper', '')}. Corpus `{result['corpus']}`, seeds "
             f"{', '.join(map(str, result['seeds']))}; {result['selection']}. Test wa-F1 / wa-ACC in %, "
             f"mean ± sample std over {'folds' if 'folds' in result['points'][0] else 'seeds'}.", ""]
    if result.get("protocol", "standard").startswith("cross"):
        lines += [f"Protocol `{result['protocol']}` (test split of the second corpus), on the classes both "
                  f"share: {', '.join(result['labels'])}; every other class is unlabelled context.", ""]
    elif result.get("protocol", "standard") != "standard":
        folds = next((len(r["folds"]) for r in result["points"] if "folds" in r), 0)
        lines += [f"Protocol `{result['protocol']}`: leave-one-session-out, {folds} folds (one per session; "
                  "dev = 10 % of the other sessions' dialogues); mean ± sample std over the folds of each "
                  "fold's mean over seeds.", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    header = ["point", "settings", "test wa-F1", "test wa-ACC", "dev wa-F1", "selected epochs",
              "test dialogues"]
    if which:
        header += [f"paper {which.upper()} wa-F1", f"paper {which.upper()} wa-ACC"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["points"]:
        cells = [row["point"], settings_text(row["settings"]), cell(row.get("test_wa_f1")),
                 cell(row.get("test_wa_acc")), cell(row.get("dev_wa_f1")),
                 ", ".join(map(str, row.get("selected_epochs", []))) or "—", str(row["test_dialogues"])]
        if which:
            ours = paper.get(row["point"]) or {}
            cells += [f"{ours['wa_f1']:.2f}" if "wa_f1" in ours else "—",
                      f"{ours['wa_acc']:.2f}" if "wa_acc" in ours else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    if which:
        lines += ["", f"Paper columns: the published {which.upper()} figures ({result.get('paper', '')}; "
                  "RoBERTa-large text, openSMILE audio, DenseNet visual features; the public code "
                  "selects the epoch on test), context only: not comparable to a dev-selected score."]
    if command:
        lines += ["", f"Reproduce: `{command}`"]
    return "\n".join(lines) + "\n"


def _value(row: dict, key: str):
    value = row["settings"].get(key)
    return value if value is not None else "default"


def _mean(row: dict, metric: str) -> float:
    stat = row.get(metric)
    return 100 * stat["mean"] if stat else np.nan


def _std(row: dict, metric: str) -> float:
    stat = row.get(metric)
    return 100 * (stat.get("sample_std") or 0.0) if stat else 0.0


def figure(result: dict, path: Path, *, corpus_label: str = "", published: str | None = None,
           command: str = "") -> Path:
    """Draw ``result`` as its experiment file's figure into ``path`` (PNG), ``command`` (the one
    that produced it) printed under it."""
    plt = pyplot()
    spec, rows = result["figure"], result["points"]
    kind = spec.get("kind", "bars")
    which, paper = published_for(result, published)
    title = result["title"] + (f" ({corpus_label})" if corpus_label else "")
    if result.get("protocol", "standard") != "standard":
        title += f", {result['protocol']}" + ("" if result["protocol"].startswith("cross") else " folds")
    if kind == "confusion":
        fig, axes = plt.subplots(1, len(rows), figsize=(0.9 + 0.75 * len(result["labels"]) * len(rows),
                                                        1.2 + 0.75 * len(result["labels"])), squeeze=False)
        for ax, row in zip(axes[0], rows):
            draw_confusion(ax, np.array(row.get("confusion") or np.zeros((len(result["labels"]),) * 2, int)),
                           result["labels"], f"{row['point']}: wa-F1 {cell(row.get('test_wa_f1'))}",
                           ylabel="true (counts summed over seeds)", fontsize=7)
    elif kind == "heatmap":
        fig, ax = plt.subplots(figsize=(7, 4))
        _heatmap(ax, rows, spec)
    else:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows)), 4))
        if kind == "line":
            _lines(ax, rows, spec, paper, which)
        else:
            _bars(ax, rows, paper, which)
        ax.set_ylabel("test score (%)")
        ax.legend(fontsize=8)
    # wrapped to the figure's width (about 14 characters per inch at 9 pt): a long corpus label
    # would otherwise run off both edges
    title = textwrap.fill(title, width=int(14 * fig.get_figwidth()), break_on_hyphens=False)
    fig.suptitle(title + f"\nseeds {', '.join(map(str, result['seeds']))}, epochs selected on dev",
                 fontsize=9)
    if command:
        fig.text(0.5, 0.005, command, ha="center", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.03 if command else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def _bars(ax, rows: list[dict], paper: dict, which: str | None) -> None:
    x = np.arange(len(rows))
    for offset, (metric, label) in zip((-0.2, 0.2), METRICS):
        ax.bar(x + offset, [_mean(r, metric) for r in rows], 0.4, yerr=[_std(r, metric) for r in rows],
               label=label, capsize=3)
        if paper:
            key = metric.removeprefix("test_")
            ax.scatter(x + offset, [(paper.get(r["point"]) or {}).get(key, np.nan) for r in rows],
                       marker="x", color="black", zorder=3,
                       label=f"paper {which.upper()} (test-selected)" if metric == "test_wa_f1" else None)
    ax.set_xticks(x, [r["point"] for r in rows], rotation=20, fontsize=8)


def _lines(ax, rows: list[dict], spec: dict, paper: dict, which: str | None) -> None:
    x_key, series_key = spec["x"], spec.get("series")
    series = list(dict.fromkeys(_value(r, series_key) for r in rows)) if series_key else [None]
    for s in series:
        chosen = [r for r in rows if series_key is None or _value(r, series_key) == s]
        xs = [float(r["settings"][x_key]) for r in chosen]
        for metric, label in METRICS:
            name = label if s is None else f"{s} {label}"
            ax.errorbar(xs, [_mean(r, metric) for r in chosen], yerr=[_std(r, metric) for r in chosen],
                        marker="o", capsize=3, label=name, linestyle="-" if metric == "test_wa_f1" else "--")
    if paper:
        xs = [float(r["settings"][x_key]) for r in rows if r["point"] in paper]
        ys = [paper[r["point"]].get("wa_f1", np.nan) for r in rows if r["point"] in paper]
        ax.scatter(xs, ys, marker="x", color="black", label=f"paper {which.upper()} wa-F1 (test-selected)")
    ax.set_xlabel(x_key)


def _heatmap(ax, rows: list[dict], spec: dict) -> None:
    x_key, y_key = spec["x"], spec.get("y")
    xs = list(dict.fromkeys(_value(r, x_key) for r in rows))
    if y_key:
        ys = list(dict.fromkeys(_value(r, y_key) for r in rows))
        labels = [f"{y_key}={y}" for y in ys]
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in rows:
            grid[ys.index(_value(r, y_key)), xs.index(_value(r, x_key))] = _mean(r, "test_wa_f1")
    else:
        series_key = spec.get("series")
        series = list(dict.fromkeys(_value(r, series_key) for r in rows)) if series_key else [None]
        labels, grid_rows = [], []
        for s in series:
            for metric, name in METRICS:
                labels.append(name if s is None else f"{s} {name}")
                line = np.full(len(xs), np.nan)
                for r in rows:
                    if series_key is None or _value(r, series_key) == s:
                        line[xs.index(_value(r, x_key))] = _mean(r, metric)
                grid_rows.append(line)
        grid = np.array(grid_rows)
    image = ax.imshow(grid, cmap="Blues", aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel(x_key)
    ax.figure.colorbar(image, ax=ax, label="test wa-F1 (%)" if y_key else "test score (%)")
