"""Classification reports: per label, macro, micro, weighted and samples averages.

Built on `sklearn.metrics.precision_recall_fscore_support` with zero_division=0.
Labels unknown for some rows (multi-language runs) are scored over the rows where
they are known; a label known nowhere in the evaluated rows is left out.

Example:
    rep = classification_report(dev.labels, decisions, dev.mask, dev.label_names)
    rep["macro"]["f1"]
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def classification_report(labels, decisions, mask, label_names) -> dict:
    """A nested dict: {"per_label": {name: {precision, recall, f1, support}},
    "macro"|"micro"|"weighted"|"samples": {precision, recall, f1}, "n": rows}."""
    labels = np.asarray(labels).astype(int)
    decisions = np.asarray(decisions).astype(int)
    mask = np.asarray(mask) > 0
    cols = [j for j in range(labels.shape[1]) if mask[:, j].any()]
    report = {"n": int(len(labels)), "per_label": {}}
    if not cols or len(labels) == 0:
        return report
    full_rows = mask[:, cols].all(axis=1)
    if full_rows.all():
        # Every row annotates every label: sklearn computes all averages directly.
        y, d = labels[:, cols], decisions[:, cols]
        p, r, f, s = precision_recall_fscore_support(y, d, average=None, zero_division=0)
        for avg in ("macro", "micro", "weighted", "samples"):
            pa, ra, fa, _ = precision_recall_fscore_support(y, d, average=avg, zero_division=0)
            report[avg] = {"precision": float(pa), "recall": float(ra), "f1": float(fa)}
    else:
        p, r, f, s = [], [], [], []
        for j in cols:
            k = mask[:, j]
            pj, rj, fj, sj = precision_recall_fscore_support(
                labels[k, j], decisions[k, j], average="binary", zero_division=0)
            p.append(pj); r.append(rj); f.append(fj); s.append(int(labels[k, j].sum()))
        p, r, f, s = map(np.asarray, (p, r, f, s))
        report["macro"] = {"precision": float(p.mean()), "recall": float(r.mean()),
                           "f1": float(f.mean())}
        w = s / max(s.sum(), 1)
        report["weighted"] = {"precision": float((p * w).sum()), "recall": float((r * w).sum()),
                              "f1": float((f * w).sum())}
        m = mask[:, cols]
        pm, rm, fm, _ = precision_recall_fscore_support(
            labels[:, cols][m], decisions[:, cols][m], average="binary", zero_division=0)
        report["micro"] = {"precision": float(pm), "recall": float(rm), "f1": float(fm)}
        report["samples"] = _samples_average(labels[:, cols], decisions[:, cols], m)
    for name_j, pj, rj, fj, sj in zip([label_names[j] for j in cols], p, r, f, s):
        report["per_label"][name_j] = {"precision": float(pj), "recall": float(rj),
                                       "f1": float(fj), "support": int(sj)}
    return report


def _samples_average(labels, decisions, mask) -> dict:
    """sklearn's samples average (zero_division=0) over each row's known labels."""
    tp = (labels * decisions * mask).sum(axis=1)
    pred = (decisions * mask).sum(axis=1)
    true = (labels * mask).sum(axis=1)
    p = np.where(pred > 0, tp / np.maximum(pred, 1), 0.0)
    r = np.where(true > 0, tp / np.maximum(true, 1), 0.0)
    f = np.where(pred + true > 0, 2 * tp / np.maximum(pred + true, 1), 0.0)
    return {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean())}


def full_report(examples, probs, thresholds) -> dict:
    """Reports at 0.5 and at tuned thresholds, overall and per language."""
    at_half = (probs >= 0.5).astype(int)
    tuned = thresholds.apply(probs)
    out = {}
    for name, dec in (("threshold_0.5", at_half), ("tuned_thresholds", tuned)):
        section = {"overall": classification_report(examples.labels, dec, examples.mask,
                                                    examples.label_names), "per_language": {}}
        for lang in dict.fromkeys(examples.langs):
            rows = examples.langs == lang
            section["per_language"][lang] = classification_report(
                examples.labels[rows], dec[rows], examples.mask[rows], examples.label_names)
        out[name] = section
    return out


def format_report(report: dict, title: str) -> str:
    """A plain-text table of one `classification_report` dict."""
    lines = [title, f"{'label':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, m in report["per_label"].items():
        lines.append(f"{name:<12}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                     f"{m['support']:>9d}")
    for avg in ("macro", "micro", "weighted", "samples"):
        if avg in report:
            m = report[avg]
            lines.append(f"{avg + ' avg':<12}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                         f"{m['f1']:>10.4f}{report['n']:>9d}")
    return "\n".join(lines)
