"""The evaluate stage's pictures, as PNG files (no CDN needed, unlike ``dvc plots show``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: dict[int, tuple[list[dict], int]], path: Path, title: str,
                warm_up_epochs: int | None = None) -> None:
    """Learning curves (``seed -> (curve rows, selected epoch)``): train loss and dev / test wa-F1
    per epoch, one line per seed, the dev-selected epoch marked; with ``warm_up_epochs``, the
    warm-up (epochs before adaptive modality dropout, Alg. 1) shaded on both panels."""
    plt = pyplot()
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(11, 4))
    if warm_up_epochs:
        for ax in (loss_ax, f1_ax):
            label = f"warm-up ({warm_up_epochs} epochs, no modality dropout)"
            ax.axvspan(0.5, warm_up_epochs + 0.5, color="0.9", zorder=0,
                       label=label if ax is loss_ax else None)
    for i, (seed, (rows, selected)) in enumerate(sorted(curves.items())):
        color = f"C{i}"
        epochs = [int(r["epoch"]) for r in rows]
        loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], color=color, label=f"seed {seed}")
        f1_ax.plot(epochs, [100 * float(r["dev_wa_f1"]) for r in rows], color=color,
                   label=f"seed {seed} dev")
        f1_ax.plot(epochs, [100 * float(r["test_wa_f1_reference_protocol_only"]) for r in rows],
                   color=color, linestyle=":", label=f"seed {seed} test")
        f1_ax.axvline(selected, color=color, alpha=0.3)
    loss_ax.set(xlabel="epoch", ylabel="train loss (Eq. 33)", title=f"{title}: training loss")
    f1_ax.set(xlabel="epoch", ylabel="wa-F1 (%)",
              title=f"{title}: dev (solid) / test (dotted); line = selected on dev")
    loss_ax.legend(fontsize=8)
    f1_ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_confusion(ax, matrix: np.ndarray, labels: list[str], title: str, *, ylabel: str = "true",
                   fontsize: float | None = None) -> None:
    """Confusion counts on ``ax``, cells shaded by the row's recall rate."""
    size = {"fontsize": fontsize} if fontsize else {}
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", **size)
    ax.set_xticks(range(len(labels)), labels, rotation=45, **size)
    ax.set_yticks(range(len(labels)), labels, **size)
    ax.set(xlabel="predicted", ylabel=ylabel, title=title)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """:func:`draw_confusion` as a figure of its own."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    draw_confusion(ax, matrix, labels, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_timeline(table, labels: list[str], path: Path, title: str) -> None:
    """One conversation's predictions (rows of :func:`pipeline.lib.predictions.prediction_table`):
    a row per speaker, a bar per turn over its time span (or its turn number where times are
    unknown), coloured by the predicted emotion; opacity and the printed figure give the
    confidence; a hatched bar is a turn for which no modality was available."""
    from matplotlib.patches import Patch

    plt = pyplot()
    timed = bool(np.isfinite(table["start_s"]).all() and np.isfinite(table["end_s"]).all()
                 and (table["end_s"] > table["start_s"]).all())
    starts = table["start_s"].to_numpy(float) if timed else table["turn"].to_numpy(float)
    widths = (table["end_s"] - table["start_s"]).to_numpy(float) if timed else np.full(len(table), 0.9)
    speakers = list(dict.fromkeys(table["speaker"]))
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    chance = 1 / len(labels)
    span = max(float((starts + widths).max() - starts.min()), 1e-9)
    fig, ax = plt.subplots(figsize=(min(6 + 0.35 * len(table), 24), 1.6 + 0.7 * len(speakers)))
    for start, width, row in zip(starts, widths, table.to_dict("records")):
        y = speakers.index(row["speaker"])
        no_input = not row["modalities"]
        certainty = (float(row["confidence"]) - chance) / (1 - chance)   # 0 at chance, 1 when sure
        ax.barh(y, width, left=start, height=0.7, color=colors[row["predicted"]],
                alpha=0.2 + 0.8 * max(certainty, 0.0), edgecolor="black", linewidth=0.5,
                hatch="//" if no_input else None)
        if width / span > 0.025:
            ax.text(start + width / 2, y, f"{row['predicted']}\n{100 * row['confidence']:.0f}%",
                    ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(speakers)), speakers)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)" if timed else "turn")
    ax.set_title(f"{title}: predicted emotion per turn (opacity and % = confidence)")
    shown = [label for label in labels if label in set(table["predicted"])]
    ax.legend(handles=[Patch(color=colors[label], label=label) for label in shown],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
