"""An HTML page per training run: curves, precision-recall, label distribution, tables.

`write_run_report(run_dir)` writes `<run_dir>/report/index.html` and the PNG figures it
shows (relative links: the folder opens offline and can be copied as a whole):

- loss per epoch (train and validation), loss per label per epoch, macro-F1 per epoch
  (from `history.json`, else `history.csv`);
- per-label precision-recall curves with the tuned threshold (and 0.5) marked, on the
  validation split: the model is reloaded and the split re-created exactly as training
  did (`kemo.data.splits.load_data`: same config, same seed). Without the training data it
  falls back to the dev split (`predictions_dev.csv` + dev labels); the page says which;
- label distribution before/after sampling (`label_distribution.json`);
- the classification reports of `report.json`: validation and dev, threshold 0.5 and
  tuned, overall and per language.

Example:
    path = write_run_report("runs/tiny", data_dir="../shared/data/brighter/track_a")
    # open runs/tiny/report/index.html in a browser
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kemo.errors import InputError

AVERAGES = ("macro", "micro", "weighted", "samples")
SETTINGS = (("threshold_0.5", "threshold 0.5"), ("tuned_thresholds", "tuned thresholds"))


# ------------------------------------------------------------------------ run files

def read_history(run_dir) -> list[dict]:
    """Per-epoch logs (epoch numbered from 1): `history.json`, else `history.csv`."""
    run_dir = Path(run_dir)
    if (run_dir / "history.json").is_file():
        from kemo.run_files import read_history as read_history_json

        return read_history_json(run_dir / "history.json")
    if (run_dir / "history.csv").is_file():
        with open(run_dir / "history.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            return [{k: (int(v) + 1 if k == "epoch" else float(v)) for k, v in r.items()}
                    for r in rows]
        except (TypeError, ValueError) as e:
            raise InputError(f"{run_dir / 'history.csv'}: not a kemo history ({e})") from None
    return []


# ---------------------------------------------------------------- PR-curve data

@dataclass
class CurveData:
    """Probabilities, gold labels and mask of one split, for the precision-recall plots."""

    split: str  # "validation" or "dev"
    label_names: list[str]
    probs: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    note: str = ""


def validation_curve_data(run_dir, data_dir=None) -> CurveData:
    """Reload the run, re-create its validation split as training did, predict it."""
    from kemo.config import load_config
    from kemo.report import classification_report
    from kemo.runs import load_run, read_report
    from kemo.data.splits import load_data

    val = load_data(load_config(Path(run_dir) / "config.toml"), data_dir).val  # fails fast
    run = load_run(run_dir)
    names = run.label_names
    if list(val.label_names) != names:
        raise InputError(f"run directory {run_dir}: the re-created validation split has labels "
                         f"{', '.join(val.label_names)}, the run {', '.join(names)}")
    probs = run.predict_probs(val.texts, run.config.train.batch_size)
    note = f"{len(val)} rows re-created from the config and seed"
    try:
        rep = read_report(run_dir, names)
        expected = rep["validation"]["tuned_thresholds"]["overall"]["macro"]["f1"]
        got = classification_report(val.labels, run.thresholds.apply(probs), val.mask,
                                    names)["macro"]["f1"]
        rows = rep.get("meta", {}).get("val_rows", len(val))
        if rows != len(val) or abs(got - expected) > 1e-4:
            note += (f"; WARNING: does not reproduce training's validation split "
                     f"({len(val)} rows, macro-F1 {got:.4f}; report.json: {rows} rows, "
                     f"{expected:.4f})")
        else:
            note += f" (checked: same rows and macro-F1 {got:.4f} as report.json)"
    except (OSError, KeyError, InputError):
        pass
    return CurveData("validation", names, probs, val.labels, val.mask, note)


def dev_curve_data(run_dir, data_dir=None) -> CurveData:
    """Dev probabilities from `predictions_dev.csv` with the dev labels (no model needed)."""
    import pandas as pd

    from kemo.config import load_config
    from kemo.data.brighter import load_split

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.toml")
    path = run_dir / "predictions_dev.csv"
    if not path.is_file():
        raise InputError(f"{path}: not found (the run had no dev split)")
    pred = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    names = [c[2:] for c in pred.columns if c.startswith("p_")]
    dev = load_split(data_dir or cfg.data.data_dir or None, "dev", cfg.data.languages)
    if list(dev.ids) != pred["id"].tolist():
        raise InputError(f"{path}: its ids differ from the dev files' ids")
    cols = [dev.label_names.index(n) if n in dev.label_names else None for n in names]
    labels = np.stack([dev.labels[:, c] if c is not None else np.zeros(len(dev)) for c in cols], 1)
    mask = np.stack([dev.mask[:, c] if c is not None else np.zeros(len(dev)) for c in cols], 1)
    probs = pred[[f"p_{n}" for n in names]].to_numpy("float32")
    return CurveData("dev", names, probs, labels, mask, f"{len(dev)} rows from {path.name}")


def curve_data(run_dir, data_dir=None) -> tuple[CurveData | None, str]:
    """Validation data if it can be re-created, else dev, else None; plus why."""
    try:
        return validation_curve_data(run_dir, data_dir), ""
    except InputError as e:
        why = f"validation split not available ({e})"
    try:
        data = dev_curve_data(run_dir, data_dir)
        data.note = f"{data.note}; {why}"
        return data, ""
    except InputError as e:
        return None, f"{why}; dev split not available either ({e})"


# ---------------------------------------------------------------------- figures

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


def plot_curves(history, label_names, out_dir: Path) -> dict[str, str]:
    """loss.png, label_loss.png, macro_f1.png from the per-epoch history."""
    files = {}
    if not history:
        return files
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [h.get(key, np.nan) for h in history]

    for name, keys, title, ylabel in (
        ("loss.png", ("loss", "val_loss"), "Loss per epoch", "loss"),
        ("macro_f1.png", ("macro_f1", "val_macro_f1"), "Macro-F1 per epoch (threshold 0.5)",
         "macro-F1"),
    ):
        if not any(k in history[0] for k in keys):
            continue
        fig = _figure(6.4, 3.8)
        ax = fig.subplots()
        for key, style, label in ((keys[0], "-o", "train"), (keys[1], "--s", "validation")):
            if key in history[0]:
                ax.plot(epochs, series(key), style, label=label)
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.savefig(out_dir / name)
        files[name] = title
    if any(f"loss_{n}" in history[0] for n in label_names):
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


def plot_pr_curves(data: CurveData, thresholds, out_path: Path) -> list[dict]:
    """One precision-recall panel per label; tuned threshold (and 0.5) marked.

    Returns per label {label, threshold, precision, recall, f1, ap, positives}.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    names = data.label_names
    ncols = min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig = _figure(4.2 * ncols, 3.7 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    rows = []
    for j, n in enumerate(names):
        ax = axes[j]
        known = data.mask[:, j] > 0
        y, p = data.labels[known, j].astype(int), data.probs[known, j]
        t = float(thresholds[j]) if j < len(thresholds) else 0.5
        if y.sum() == 0:
            ax.text(0.5, 0.5, f"{n}: no positive\nexamples in {data.split}",
                    ha="center", va="center")
            ax.set_axis_off()
            continue
        precision, recall, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.plot(recall, precision, color="tab:blue", label=f"PR curve (AP {ap:.3f})")
        ax.axhline(y.mean(), color="grey", ls=":", lw=1, label=f"prevalence {y.mean():.2f}")
        for thr, marker, color, what in ((0.5, "s", "tab:orange", "0.5"),
                                         (t, "o", "tab:red", "tuned")):
            d = p >= thr
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
        ax.legend(fontsize="x-small", loc="best")
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle(f"Precision-recall per label, {data.split} split")
    fig.savefig(out_path)
    return rows


def plot_distribution(dist: dict, out_path: Path):
    """Grouped bars: positive rate per label before and after sampling."""
    names = dist["labels"]
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


# ------------------------------------------------------------------------- HTML

def _e(x) -> str:
    return html.escape(str(x))


def report_table(rep: dict, caption: str) -> str:
    """One `kemo.report.classification_report` dict as an HTML table."""
    head = ("<tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th>support</th></tr>")
    rows = [f"<tr><td>{_e(n)}</td><td>{m['precision']:.4f}</td><td>{m['recall']:.4f}</td>"
            f"<td>{m['f1']:.4f}</td><td>{m['support']}</td></tr>"
            for n, m in rep.get("per_label", {}).items()]
    for avg in AVERAGES:
        if avg in rep:
            m = rep[avg]
            cls = ' class="main"' if avg == "macro" else ""
            rows.append(f"<tr{cls}><td>{avg} avg</td><td>{m['precision']:.4f}</td>"
                        f"<td>{m['recall']:.4f}</td><td>{m['f1']:.4f}</td>"
                        f"<td>{rep.get('n', '')}</td></tr>")
    return (f"<table><caption>{_e(caption)}</caption>{head}{''.join(rows)}</table>")


def _split_section(split: str, rep: dict) -> str:
    parts = [f"<h3>{_e(split)}</h3>", '<div class="row">']
    for key, title in SETTINGS:
        if key in rep:
            parts.append(report_table(rep[key]["overall"], f"{split}, {title}, all rows"))
    parts.append("</div>")
    langs = list(rep.get("tuned_thresholds", {}).get("per_language", {}))
    if langs:
        head = "".join(f"<th>macro-F1, {_e(t)}</th><th>micro-F1, {_e(t)}</th>"
                       for _, t in SETTINGS)
        rows = []
        for lang in langs:
            cells = []
            for key, _ in SETTINGS:
                r = rep.get(key, {}).get("per_language", {}).get(lang, {})
                cells += [f"<td>{r[a]['f1']:.4f}</td>" if a in r else "<td>-</td>"
                          for a in ("macro", "micro")]
            n = rep["tuned_thresholds"]["per_language"][lang].get("n", "")
            rows.append(f"<tr><td>{_e(lang)}</td><td>{n}</td>{''.join(cells)}</tr>")
        parts.append(f"<table><caption>{_e(split)}, per language</caption><tr><th>language"
                     f"</th><th>rows</th>{head}</tr>{''.join(rows)}</table>")
        parts.append(f"<details><summary>{_e(split)}: full table per language</summary>"
                     '<div class="row">')
        for lang in langs:
            for key, title in SETTINGS:
                r = rep.get(key, {}).get("per_language", {}).get(lang)
                if r:
                    parts.append(report_table(r, f"{split}, {lang}, {title}"))
        parts.append("</div></details>")
    return "\n".join(parts)


CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1150px; color: #222; }
h1 { margin-bottom: 4px; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
.meta { color: #555; }
.note { background: #f6f6f0; border-left: 4px solid #bba; padding: 6px 10px; }
table { border-collapse: collapse; margin: 8px 16px 16px 0; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { border: 1px solid #ddd; padding: 3px 9px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.main td { font-weight: 700; background: #f3f7ff; }
.row { display: flex; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; border: 1px solid #eee; margin: 6px 8px 6px 0; }
.row img { max-width: 49%; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
"""


def write_run_report(run_dir, data_dir=None, out_dir=None) -> Path:
    """Write `<out_dir or run_dir/report>/index.html` and its PNGs; return the HTML path."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise InputError(f"run directory {run_dir}: no config.toml (not a kemo run directory)")
    from kemo.runs import read_run_state

    # Every file the page reads is checked before anything is written.
    state = read_run_state(run_dir, finished=False)
    history = read_history(run_dir)
    report, dist, names = state.report or {}, state.distribution, state.label_names or []
    thresholds = state.thresholds.thresholds if state.thresholds else [0.5] * len(names)
    out = Path(out_dir) if out_dir else run_dir / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"report directory {out}: cannot create ({e.strerror})") from None

    body = [f"<h1>Run report: {_e(run_dir.name)}</h1>",
            f'<p class="meta">{_e(run_dir.resolve())}</p>']
    meta = report.get("meta", {})
    if meta:
        body.append('<p class="meta">' + " &middot; ".join(
            f"{_e(k.replace('_', ' '))}: {_e(v if not isinstance(v, list) else len(v))}"
            for k, v in meta.items() if k != "thresholds") + "</p>")

    body.append("<h2>Training curves</h2>")
    figs = plot_curves(history, names, out)
    if not figs:
        body.append('<p class="note">No history.json or history.csv in the run directory.</p>')
    small = [f for f in ("loss.png", "macro_f1.png") if f in figs]
    body.append('<div class="row">' + "".join(f'<img src="{f}" alt="{_e(figs[f])}">'
                                              for f in small) + "</div>")
    body += [f'<img src="{f}" alt="{_e(t)}">' for f, t in figs.items() if f not in small]

    body.append("<h2>Precision-recall per label</h2>")
    data, why = curve_data(run_dir, data_dir) if names else (None, "no thresholds.json")
    if data is None:
        body.append(f'<p class="note">Not drawn: {_e(why)}. Pass --data-dir (or set '
                    "$KEMO_DATA_DIR) to the Track A root the run was trained on.</p>")
    else:
        source = ("validation split (carved from train; the thresholds were tuned on it)"
                  if data.split == "validation" else
                  "dev split (the validation split could not be re-created; the thresholds "
                  "were tuned on validation, not dev)")
        body.append(f'<p class="note">Computed on the <b>{_e(source)}</b>: {_e(data.note)}.'
                    " Red dot: the run's tuned threshold; orange square: 0.5.</p>")
        rows = plot_pr_curves(data, [thresholds[names.index(n)] if n in names else 0.5
                                     for n in data.label_names], out / "pr_curves.png")
        body.append('<img src="pr_curves.png" alt="precision-recall curves">')
        if rows:
            body.append(f"<table><caption>Tuned thresholds on the {_e(data.split)} split"
                        "</caption><tr><th>label</th><th>threshold</th><th>precision</th>"
                        "<th>recall</th><th>F1</th><th>average precision</th><th>positives"
                        "</th></tr>" + "".join(
                            f"<tr><td>{_e(r['label'])}</td><td>{r['threshold']:.4f}</td>"
                            f"<td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td>"
                            f"<td>{r['f1']:.4f}</td><td>{r['ap']:.4f}</td>"
                            f"<td>{r['positives']}/{r['rows']}</td></tr>" for r in rows)
                        + "</table>")

    body.append("<h2>Label distribution</h2>")
    if dist:
        plot_distribution(dist, out / "label_distribution.png")
        body.append('<img src="label_distribution.png" alt="label distribution">')
    else:
        body.append('<p class="note">No label_distribution.json in the run directory.</p>')

    body.append("<h2>Classification reports</h2>")
    if not report:
        body.append('<p class="note">No report.json in the run directory.</p>')
    if "members" in report:  # an ensemble (kemo.ensemble)
        from kemo.ensemble import members_table

        header, rows = members_table(report)
        body.append("<h3>Ensemble members</h3>")
        body.append("<table><caption>Each member and the ensemble, macro-F1 and dev "
                    "F1 per label (each with its own tuned thresholds)</caption><tr>"
                    + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                              for r in rows) + "</table>")
    for split in ("validation", "dev"):
        if split in report:
            body.append(_split_section(split, report[split]))

    body.append("<h2>Config</h2>")
    body.append(f"<pre>{_e((run_dir / 'config.toml').read_text())}</pre>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kemo run {_e(run_dir.name)}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
