"""Classification scores: per label, macro, micro, weighted and samples averages.

Built on `sklearn.metrics.precision_recall_fscore_support` with zero_division=0.
Labels unknown for some rows (multi-language runs) are scored over the rows where
they are known; a label known nowhere in the evaluated rows is left out.
`full_report` scores a split at each decision `Setting` (0.5, the global tuned
thresholds, the per-language ones), each overall, per language and as the mean of the
per-language macro-F1 (`MEAN`, the shared task's ranking number): the sections of
report.json (`kemo.run.report_file`); `kemo.evaluation.result_text` prints them.

Example:
    rep = classification_report(dev.labels, decisions, dev.mask, dev.label_names)
    rep[MACRO][F1]
    splits = {DEV: full_report(dev, dev_probs, search, per_language_search)}
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from kemo.run.report_file import (
    AVERAGES, F1, LANGUAGES, MACRO, MACRO_F1, MEAN, MICRO, MICRO_F1, N, OVERALL, PER_LABEL,
    PER_LANGUAGE, PRECISION, RECALL, SAMPLES, SUPPORT, WEIGHTED, Setting,
)


def classification_report(labels, decisions, mask, label_names) -> dict:
    """A nested dict: {PER_LABEL: {name: {precision, recall, f1, support}},
    macro|micro|weighted|samples: {precision, recall, f1}, N: rows}."""
    labels = np.asarray(labels).astype(int)
    decisions = np.asarray(decisions).astype(int)
    mask = np.asarray(mask) > 0
    cols = [j for j in range(labels.shape[1]) if mask[:, j].any()]
    report = {N: int(len(labels)), PER_LABEL: {}}
    if not cols or len(labels) == 0:
        return report
    full_rows = mask[:, cols].all(axis=1)
    if full_rows.all():
        # Every row annotates every label: sklearn computes all averages directly.
        y, d = labels[:, cols], decisions[:, cols]
        p, r, f, s = precision_recall_fscore_support(y, d, average=None, zero_division=0)
        for avg in AVERAGES:
            pa, ra, fa, _ = precision_recall_fscore_support(y, d, average=avg, zero_division=0)
            report[avg] = _scores(pa, ra, fa)
    else:
        p, r, f, s = [], [], [], []
        for j in cols:
            k = mask[:, j]
            pj, rj, fj, sj = precision_recall_fscore_support(
                labels[k, j], decisions[k, j], average="binary", zero_division=0)
            p.append(pj); r.append(rj); f.append(fj); s.append(int(labels[k, j].sum()))
        p, r, f, s = map(np.asarray, (p, r, f, s))
        report[MACRO] = _scores(p.mean(), r.mean(), f.mean())
        w = s / max(s.sum(), 1)
        report[WEIGHTED] = _scores((p * w).sum(), (r * w).sum(), (f * w).sum())
        m = mask[:, cols]
        pm, rm, fm, _ = precision_recall_fscore_support(
            labels[:, cols][m], decisions[:, cols][m], average="binary", zero_division=0)
        report[MICRO] = _scores(pm, rm, fm)
        report[SAMPLES] = _samples_average(labels[:, cols], decisions[:, cols], m)
    for name_j, pj, rj, fj, sj in zip([label_names[j] for j in cols], p, r, f, s):
        report[PER_LABEL][name_j] = {**_scores(pj, rj, fj), SUPPORT: int(sj)}
    return report


def _scores(precision, recall, f1) -> dict:
    return {PRECISION: float(precision), RECALL: float(recall), F1: float(f1)}


def _samples_average(labels, decisions, mask) -> dict:
    """sklearn's samples average (zero_division=0) over each row's known labels."""
    tp = (labels * decisions * mask).sum(axis=1)
    pred = (decisions * mask).sum(axis=1)
    true = (labels * mask).sum(axis=1)
    p = np.where(pred > 0, tp / np.maximum(pred, 1), 0.0)
    r = np.where(true > 0, tp / np.maximum(true, 1), 0.0)
    f = np.where(pred + true > 0, 2 * tp / np.maximum(pred + true, 1), 0.0)
    return _scores(p.mean(), r.mean(), f.mean())


# history.json's key for it on validation during training (runs of several languages:
# what early stopping monitors, `kemo.training.validation_callback`); one language: "val_macro_f1".
LANGUAGE_MEAN_KEY = "val_language_mean_f1"


def full_report(examples, probs, thresholds, per_language=None) -> dict:
    """Reports at 0.5, at the global tuned `thresholds` and, with `per_language` (a
    `ThresholdSearch` holding per-language thresholds), at those: each setting overall,
    per language, and the mean of the per-language macro- and micro-F1 (`MEAN`)."""
    from kemo.prediction.thresholds import ThresholdSearch

    untuned = ThresholdSearch.untuned(examples.label_names)  # Setting.AT_HALF
    decisions = {Setting.AT_HALF: untuned.apply(probs),
                 Setting.GLOBAL: thresholds.apply(probs)}  # no languages: global
    if per_language is not None:
        decisions[Setting.PER_LANGUAGE] = per_language.apply(probs, examples.langs)
    return {name: setting_report(examples, dec) for name, dec in decisions.items()}


def setting_report(examples, decisions) -> dict:
    """{OVERALL, PER_LANGUAGE, MEAN} for one set of 0/1 `decisions` on `examples`."""
    section = {OVERALL: classification_report(examples.labels, decisions, examples.mask,
                                              examples.label_names), PER_LANGUAGE: {}}
    for lang in dict.fromkeys(examples.langs):
        rows = examples.langs == lang
        section[PER_LANGUAGE][str(lang)] = classification_report(
            examples.labels[rows], decisions[rows], examples.mask[rows], examples.label_names)
    section[MEAN] = language_mean(section[PER_LANGUAGE])
    return section


def language_mean(per_language: dict) -> dict:
    """{MACRO_F1, MICRO_F1, LANGUAGES}: the unweighted mean over the languages with a
    score (as the shared task ranks: each language's macro-F1, then the mean)."""
    scored = [r for r in per_language.values() if MACRO in r]
    if not scored:
        return {MACRO_F1: 0.0, MICRO_F1: 0.0, LANGUAGES: 0}
    return {MACRO_F1: float(np.mean([r[MACRO][F1] for r in scored])),
            MICRO_F1: float(np.mean([r[MICRO][F1] for r in scored])),
            LANGUAGES: len(scored)}


def add_language_means(split_report: dict) -> bool:
    """Add `MEAN` to each setting of a report.json split that lacks it (runs written
    before it existed); True if anything was added."""
    added = False
    for key in Setting:
        section = split_report.get(key)
        if section is not None and MEAN not in section:
            section[MEAN] = language_mean(section.get(PER_LANGUAGE, {}))
            added = True
    return added
