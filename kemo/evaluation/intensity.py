"""Scoring emotion intensities (Track B): the official Pearson measure, cut points, confusion.

The official Track B number of a language is Pearson's r between predicted and gold
intensity, per emotion, averaged over the emotions the language annotates; a run with
several languages reports the unweighted mean over languages. r is undefined when the
predictions or the gold of an emotion are constant (zero variance): kemo counts it as
0.0 (no linear association can be shown), so a model that predicts one value everywhere
scores 0, never NaN. Rows where an emotion is unknown (mask 0) are skipped.

The continuous score of a row is turned into an integer 0..K by per-emotion cut points
`c_1 <= ... <= c_K` (intensity = how many cut points the score reaches), tuned on the
validation rows to maximise that emotion's r of the integers (`tune_cut_points`), the
analogue of the binary runs' threshold search; untuned, they sit at k - 0.5 (rounding).
How a run applies them: `kemo.prediction.cut_points`.

Example:
    pearson_r([0, 1, 2, 3], [0.1, 0.9, 2.2, 2.8])          # ~0.99
    cuts = tune_cut_points(val_scores, val.labels, val.mask, max_intensity=3)
    ints = apply_cut_points(dev_scores, cuts)              # (rows, labels) in 0..3
    intensity_report(dev, dev_scores, cuts, 3)["integer"]["mean_r"]
"""

from __future__ import annotations

import numpy as np

from kemo.run.report_file import (
    CONFUSION, CONFUSION_PER_LANGUAGE, MEAN_R, PER_LABEL, PER_LANGUAGE, R, ROWS, IntensityScore,
)

from kemo.prediction.cut_points import CutPoints, apply_cut_points, untuned_cut_points

LANGUAGE_MEAN_R_KEY = "val_language_mean_r"  # early stopping's key with several languages


def pearson_r(gold, pred) -> float:
    """Pearson's r of two equal-length vectors; 0.0 where undefined (fewer than two
    rows, or either vector constant)."""
    x = np.asarray(gold, "float64").ravel()
    y = np.asarray(pred, "float64").ravel()
    if len(x) != len(y):
        raise ValueError(f"pearson_r: {len(x)} gold values, {len(y)} predictions")
    if len(x) < 2:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if not np.isfinite(denom) or denom <= 1e-12 * max(1.0, len(x)):
        return 0.0
    return float(np.clip((dx * dy).sum() / denom, -1.0, 1.0))


def label_pearson(labels, pred, mask, label_names) -> dict:
    """{label: r} over the rows where each label is known (labels known nowhere left out)."""
    out = {}
    for j, name in enumerate(label_names):
        known = np.asarray(mask)[:, j] > 0
        if known.any():
            out[name] = pearson_r(np.asarray(labels)[known, j], np.asarray(pred)[known, j])
    return out


def language_pearson(examples, pred) -> dict:
    """The official measure of `pred` (rows x labels, continuous or integer) on
    `examples`: {PER_LANGUAGE: {lang: {R, PER_LABEL, ROWS}}, MEAN_R} (the mean over
    languages of the mean over each language's labels)."""
    pred = np.asarray(pred, "float64")
    per = {}
    for lang in dict.fromkeys(examples.langs):
        rows = examples.langs == lang
        labels = label_pearson(examples.labels[rows], pred[rows], examples.mask[rows],
                               examples.label_names)
        per[str(lang)] = {R: float(np.mean(list(labels.values()))) if labels else 0.0,
                          PER_LABEL: labels, ROWS: int(rows.sum())}
    mean = float(np.mean([v[R] for v in per.values()])) if per else 0.0
    return {PER_LANGUAGE: per, MEAN_R: mean}


def language_mean_r(examples, pred) -> float:
    """The one number early stopping reads: `language_pearson(...)[MEAN_R]`."""
    return language_pearson(examples, pred)[MEAN_R]


def tune_cut_points(scores, labels, mask, max_intensity: int, passes: int = 3,
                    grid: int = 40) -> np.ndarray:
    """(labels, K) cut points maximising each label's r of the integer intensities on
    these (validation) rows: coordinate ascent from rounding over `grid` quantiles of
    the label's scores, keeping cut points ordered; a label without variation in its
    gold keeps the rounding cut points."""
    scores, labels, mask = (np.asarray(a, "float64") for a in (scores, labels, mask))
    cuts = untuned_cut_points(scores.shape[1], max_intensity)
    for j in range(scores.shape[1]):
        known = mask[:, j] > 0
        s, g = scores[known, j], labels[known, j]
        if len(s) < 2 or g.std() == 0:
            continue
        cuts[j] = _tune_one(s, g, cuts[j].copy(), passes, grid)
    return cuts


def _tune_one(s, g, cuts, passes: int, grid: int) -> np.ndarray:
    candidates = np.unique(np.concatenate([np.quantile(s, np.linspace(0, 1, grid + 1)),
                                           cuts]))
    best = pearson_r(g, (s[:, None] >= cuts[None, :]).sum(1))
    for _ in range(passes):
        improved = False
        for k in range(len(cuts)):
            low = cuts[k - 1] if k else -np.inf
            high = cuts[k + 1] if k + 1 < len(cuts) else np.inf
            for c in candidates[(candidates >= low) & (candidates <= high)]:
                trial = cuts.copy()
                trial[k] = c
                r = pearson_r(g, (s[:, None] >= trial[None, :]).sum(1))
                if r > best + 1e-12:
                    best, cuts, improved = r, trial, True
        if not improved:
            break
    return cuts


def confusion(gold, pred, max_intensity: int) -> list[list[int]]:
    """(K+1) x (K+1) counts: row = gold intensity, column = predicted."""
    table = np.zeros((max_intensity + 1, max_intensity + 1), "int64")
    np.add.at(table, (np.asarray(gold, "int64"), np.asarray(pred, "int64")), 1)
    return table.tolist()


def confusion_tables(examples, ints, max_intensity: int, rows=None) -> dict:
    """{label: confusion table} of the integer intensities `ints` over `rows` (a boolean
    mask; default all), for each label some of those rows annotate."""
    rows = np.ones(len(examples), bool) if rows is None else rows
    tables = {}
    for j, name in enumerate(examples.label_names):
        known = rows & (examples.mask[:, j] > 0)
        if known.any():
            tables[name] = confusion(examples.labels[known, j], ints[known, j], max_intensity)
    return tables


def intensity_report(examples, scores, cuts, max_intensity: int) -> dict:
    """One split's report: the official measure of the continuous scores and of the
    integers the cut points give, and per label a confusion table of intensities (all
    rows; and per language, `CONFUSION_PER_LANGUAGE`)."""
    ints = apply_cut_points(scores, cuts)
    per_language = {str(lang): confusion_tables(examples, ints, max_intensity,
                                                examples.langs == lang)
                    for lang in dict.fromkeys(examples.langs)}
    return {IntensityScore.CONTINUOUS: language_pearson(examples, scores),
            IntensityScore.INTEGER: language_pearson(examples, ints),
            CONFUSION: confusion_tables(examples, ints, max_intensity),
            CONFUSION_PER_LANGUAGE: per_language, ROWS: len(examples)}



def fit_cut_points(scores, examples, max_intensity: int, tune: bool = True) -> CutPoints:
    """Cut points tuned on `examples` (the validation rows; never dev), or rounding."""
    names = tuple(examples.label_names)
    cuts = (tune_cut_points(scores, examples.labels, examples.mask, max_intensity) if tune
            else untuned_cut_points(len(names), max_intensity))
    return CutPoints(names, cuts, max_intensity, tune)
