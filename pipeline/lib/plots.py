"""The evaluate stage's pictures, as PNG files (no CDN needed, unlike ``dvc plots show``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: dict[int, tuple[list[dict], int]], path: Path, title: str) -> None:
    """Learning curves (``seed -> (curve rows, selected epoch)``): train loss and dev / test wa-F1
    per epoch, one line per seed, the dev-selected epoch marked."""
    plt = _pyplot()
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(11, 4))
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


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """Confusion counts, cells shaded by the row's recall rate."""
    plt = _pyplot()
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
