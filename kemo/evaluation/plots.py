"""The figures of a run's HTML report (`kemo.evaluation.run_page`), as PNG files (matplotlib, Agg).

Example:
    figs = plot_curves(read_history("runs/tiny"), run.label_names, Path("runs/tiny/report"))
    plot_distribution(json.loads(Path("runs/tiny/label_distribution.json").read_text()),
                      Path("runs/tiny/report/label_distribution.png"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kemo.evaluation.classification_scores import LANGUAGE_MEAN_KEY
from kemo.evaluation.split_probs import SplitProbs
from kemo.prediction.thresholds import UNTUNED_THRESHOLD, decide


MANY_LABELS = 10  # more labels than this: grids and rows instead of lines and bars


def _figure(width, height):
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg canvas

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _label_colors(names):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def monitored_key(history) -> str:
    """The history key the run validated on (early stopping's, when on): the mean over
    languages of macro-F1 when it was logged (a run of several languages), else the
    macro-F1 of all validation rows."""
    return LANGUAGE_MEAN_KEY if history and LANGUAGE_MEAN_KEY in history[0] else "val_macro_f1"


def f1_lines(history) -> list[tuple[str, str, str]]:
    """The macro-F1 figure's lines, (history key, legend, style): the monitored
    validation number first; for several languages the pooled one beside it."""
    if not history:
        return []
    several = monitored_key(history) == LANGUAGE_MEAN_KEY
    lines = [("macro_f1", "train, all rows" if several else "train", "-o"),
             ("val_macro_f1", "validation, all rows pooled" if several
              else "validation (monitored)", "--s")]
    if several:
        lines.insert(0, (LANGUAGE_MEAN_KEY, "validation, mean over languages (monitored)",
                         "-D"))
    return [line for line in lines if line[0] in history[0]]


def plot_curves(history, label_names, out_dir: Path, best_epoch=None) -> dict[str, str]:
    """loss.png, label_loss.png, macro_f1.png from the per-epoch history; macro_f1.png
    shows the validation number the run monitored (`f1_lines`) and, with `best_epoch`,
    marks the epoch whose weights the run kept."""
    files = {}
    if not history:
        return files
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [h.get(key, np.nan) for h in history]

    several = monitored_key(history) == LANGUAGE_MEAN_KEY
    loss_lines = [(k, label, style) for k, label, style in (
        ("loss", "train", "-o"), ("val_loss", "validation", "--s")) if k in history[0]]
    for name, lines, title, ylabel in (
        ("loss.png", loss_lines, "Loss per epoch", "loss"),
        ("macro_f1.png", f1_lines(history),
         "Macro-F1 per epoch at 0.5 (monitored: language mean)" if several
         else "Macro-F1 per epoch (threshold 0.5)", "macro-F1"),
    ):
        if not lines:
            continue
        fig = _figure(6.4, 3.8)
        ax = fig.subplots()
        for key, label, style in lines:
            ax.plot(epochs, series(key), style, label=label,
                    lw=2.5 if "monitored" in label else 1.5)
        if best_epoch and name == "macro_f1.png":
            ax.axvline(best_epoch, color="grey", ls=":", lw=1,
                       label=f"weights kept: epoch {best_epoch}")
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.savefig(out_dir / name)
        files[name] = title
    if len(label_names) > MANY_LABELS and any(f"loss_{n}" in history[0] for n in label_names):
        _plot_label_loss_grid(history, label_names, out_dir / "label_loss.png")
        files["label_loss.png"] = "Loss per label per epoch"
    elif any(f"loss_{n}" in history[0] for n in label_names):
        colors = _label_colors(label_names)
        fig = _figure(9, 4.6)
        ax = fig.subplots()
        for n in label_names:
            if f"loss_{n}" in history[0]:
                ax.plot(epochs, series(f"loss_{n}"), "-o", color=colors[n], label=f"{n} train")
            if f"val_loss_{n}" in history[0]:
                ax.plot(epochs, series(f"val_loss_{n}"), "--s", color=colors[n],
                        label=f"{n} validation", alpha=0.8)
        ax.set(title="Loss per label per epoch (solid: train, dashed: validation)",
               xlabel="epoch", ylabel="loss")
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend(ncol=2, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.savefig(out_dir / "label_loss.png")
        files["label_loss.png"] = "Loss per label per epoch"
    return files


def _plot_label_loss_grid(history, label_names, out_path: Path) -> None:
    """Many labels (GoEmotions' 28): the loss per label and epoch as two heat maps, train
    and validation, one row per label (a line per label would be unreadable)."""
    epochs = [h["epoch"] for h in history]
    fig = _figure(9, 1.2 + 0.22 * len(label_names))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, prefix, what in ((axes[0], "loss_", "train"), (axes[1], "val_loss_", "validation")):
        grid = np.array([[h.get(f"{prefix}{n}", np.nan) for h in history] for n in label_names])
        image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_xticks(range(len(epochs)), epochs)
        ax.set(title=f"{what} loss per label", xlabel="epoch")
        fig.colorbar(image, ax=ax, shrink=0.6)
    axes[0].set_yticks(range(len(label_names)), label_names, fontsize="small")
    fig.savefig(out_path)


def plot_pr_curves(data: SplitProbs, thresholds, out_path: Path) -> list[dict]:
    """One precision-recall panel per label; tuned threshold (and 0.5) marked.

    Returns per label {label, threshold, precision, recall, f1, ap, positives}.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    names = data.label_names
    many = len(names) > MANY_LABELS  # small panels, seven a row, legends in small type
    ncols = min(7 if many else 3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig = _figure((2.6 if many else 4.2) * ncols, (2.5 if many else 3.7) * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    rows = []
    for j, n in enumerate(names):
        ax = axes[j]
        known = data.mask[:, j] > 0
        y, p = data.labels[known, j].astype(int), data.probs[known, j]
        t = float(thresholds[j]) if j < len(thresholds) else UNTUNED_THRESHOLD
        if y.sum() == 0:
            ax.text(0.5, 0.5, f"{n}: no positive\nexamples in {data.split}",
                    ha="center", va="center")
            ax.set_axis_off()
            continue
        precision, recall, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.plot(recall, precision, color="tab:blue", label=f"PR curve (AP {ap:.3f})")
        ax.axhline(y.mean(), color="grey", ls=":", lw=1, label=f"prevalence {y.mean():.2f}")
        for thr, marker, color, what in ((UNTUNED_THRESHOLD, "s", "tab:orange",
                                          f"{UNTUNED_THRESHOLD:g}"),
                                         (t, "o", "tab:red", "tuned")):
            d = decide(p, thr) > 0
            tp = int((d & (y == 1)).sum())
            pr = tp / max(d.sum(), 1) if d.sum() else 0.0
            rc = tp / max(y.sum(), 1)
            f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
            ax.plot([rc], [pr], marker, color=color, ms=9 if what == "tuned" else 7,
                    label=f"{what} threshold {thr:.3f}: F1 {f1:.3f}", zorder=3)
            if what == "tuned":
                rows.append({"label": n, "threshold": thr, "precision": pr, "recall": rc,
                             "f1": f1, "ap": float(ap), "positives": int(y.sum()),
                             "rows": int(len(y))})
        ax.set(title=f"{n} ({int(y.sum())}/{len(y)} positive)", xlabel="recall",
               ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05))
        ax.grid(alpha=0.3)
        if not many:
            ax.legend(fontsize="x-small", loc="best")
        else:  # no room for a legend: AP and tuned F1 in the title (the table has the rest)
            ax.set_title(f"{n} ({int(y.sum())}/{len(y)})\nAP {ap:.2f}, tuned F1 {rows[-1]['f1']:.2f}")
            ax.title.set_fontsize("small")
            ax.tick_params(labelsize="x-small")
            ax.xaxis.label.set_fontsize("x-small")
            ax.yaxis.label.set_fontsize("x-small")
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle(f"Precision-recall per label, {data.split} split"
                 + ("; red dot: tuned threshold, orange square: 0.5" if many else ""))
    fig.savefig(out_path)
    return rows


def plot_distribution(dist: dict, out_path: Path):
    """Grouped bars: positive rate per label before and after sampling."""
    names = dist["labels"]
    if len(names) > MANY_LABELS:
        return _plot_distribution_rows(dist, out_path)
    x = np.arange(len(names))
    fig = _figure(max(6.0, 1.1 * len(names) + 2), 3.8)
    ax = fig.subplots()
    w = 0.38
    b1 = ax.bar(x - w / 2, dist["before"], w, label="before sampling (train)")
    b2 = ax.bar(x + w / 2, dist["after"], w, label="after sampling (epoch 1 draw)")
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="%.2f", fontsize="small")
    ax.set_xticks(x, names)
    ax.set(ylabel="positive rate",
           title=f"Label distribution (sampling strength {dist.get('sampling_strength', '?')})",
           ylim=(0, min(1.0, max(max(dist["before"]), max(dist["after"])) * 1.25 + 0.02)))
    ax.legend()
    fig.savefig(out_path)


def _plot_distribution_rows(dist: dict, out_path: Path):
    """Many labels: horizontal bars, one row per label, in the run's label order."""
    names = dist["labels"]
    y = np.arange(len(names))
    fig = _figure(8, 1.4 + 0.3 * len(names))
    ax = fig.subplots()
    h = 0.4
    ax.barh(y - h / 2, dist["before"], h, label="before sampling (train)")
    ax.barh(y + h / 2, dist["after"], h, label="after sampling (epoch 1 draw)")
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.set(xlabel="positive rate",
           title=f"Label distribution (sampling strength {dist.get('sampling_strength', '?')})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(out_path)
