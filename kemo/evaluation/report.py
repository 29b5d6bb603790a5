"""Classification reports: per label, macro, micro, weighted and samples averages.

Built on `sklearn.metrics.precision_recall_fscore_support` with zero_division=0.
Labels unknown for some rows (multi-language runs) are scored over the rows where
they are known; a label known nowhere in the evaluated rows is left out.
`full_report` scores a split at 0.5, at the global tuned thresholds and at the
per-language ones (`SETTINGS`), each overall, per language and as the mean of the
per-language macro-F1 (`MEAN`, the shared task's ranking number);
`format_console_report` prints them with one table row per language.

Example:
    rep = classification_report(dev.labels, decisions, dev.mask, dev.label_names)
    rep["macro"]["f1"]
    report = {"dev": full_report(dev, dev_probs, search, per_language_search)}
    print(format_language_table(report["dev"], "dev"))  # one row per language + mean
"""

from __future__ import annotations

from dataclasses import dataclass

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


# report.json's settings per split: key -> what decided.
# The one table of the decision settings a report holds: report.json key -> (its name in
# a console report's title, its console column head, its name on the HTML page).
SETTING_NAMES = {
    "threshold_0.5": ("threshold 0.5", "at 0.5", "threshold 0.5"),
    "tuned_thresholds": ("thresholds tuned on validation (global)", "global",
                         "tuned (global)"),
    "per_language_thresholds": ("thresholds tuned on validation, per language", "per-lang",
                                "tuned per language"),
}
SETTINGS = {key: names[0] for key, names in SETTING_NAMES.items()}
MEAN = "mean_over_languages"  # the shared task's ranking number: mean of per-language macro-F1
# history.json's key for it on validation during training (runs of several languages:
# what early stopping monitors, `kemo.training.validation_callback`); one language: "val_macro_f1".
LANGUAGE_MEAN_KEY = "val_language_mean_f1"


def full_report(examples, probs, thresholds, per_language=None) -> dict:
    """Reports at 0.5, at the global tuned `thresholds` and, with `per_language` (a
    `ThresholdSearch` holding per-language thresholds), at those: each setting overall,
    per language, and the mean of the per-language macro- and micro-F1 (`MEAN`)."""
    from kemo.prediction.thresholds import ThresholdSearch

    untuned = ThresholdSearch.untuned(examples.label_names)  # the "threshold_0.5" setting
    decisions = {"threshold_0.5": untuned.apply(probs),
                 "tuned_thresholds": thresholds.apply(probs)}  # no languages: global
    if per_language is not None:
        decisions["per_language_thresholds"] = per_language.apply(probs, examples.langs)
    return {name: setting_report(examples, dec) for name, dec in decisions.items()}


def setting_report(examples, decisions) -> dict:
    """{"overall", "per_language", MEAN} for one set of 0/1 `decisions` on `examples`."""
    section = {"overall": classification_report(examples.labels, decisions, examples.mask,
                                                examples.label_names), "per_language": {}}
    for lang in dict.fromkeys(examples.langs):
        rows = examples.langs == lang
        section["per_language"][str(lang)] = classification_report(
            examples.labels[rows], decisions[rows], examples.mask[rows], examples.label_names)
    section[MEAN] = language_mean(section["per_language"])
    return section


def language_mean(per_language: dict) -> dict:
    """{"macro_f1", "micro_f1", "languages"}: the unweighted mean over the languages
    with a score (as the shared task ranks: each language's macro-F1, then the mean)."""
    scored = [r for r in per_language.values() if "macro" in r]
    if not scored:
        return {"macro_f1": 0.0, "micro_f1": 0.0, "languages": 0}
    return {"macro_f1": float(np.mean([r["macro"]["f1"] for r in scored])),
            "micro_f1": float(np.mean([r["micro"]["f1"] for r in scored])),
            "languages": len(scored)}


def add_language_means(split_report: dict) -> bool:
    """Add `MEAN` to each setting of a report.json split that lacks it (runs written
    before it existed); True if anything was added."""
    added = False
    for key in SETTINGS:
        section = split_report.get(key)
        if section is not None and MEAN not in section:
            section[MEAN] = language_mean(section.get("per_language", {}))
            added = True
    return added


def format_report(report: dict, title: str) -> str:
    """A plain-text table of one `classification_report` dict."""
    w = max([12] + [len(n) + 2 for n in report["per_label"]])  # a long name widens it
    lines = [title, f"{'label':<{w}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, m in report["per_label"].items():
        lines.append(f"{name:<{w}}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                     f"{m['support']:>9d}")
    for avg in ("macro", "micro", "weighted", "samples"):
        if avg in report:
            m = report[avg]
            lines.append(f"{avg + ' avg':<{w}}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                         f"{m['f1']:>10.4f}{report['n']:>9d}")
    return "\n".join(lines)


@dataclass
class LanguageRow:
    """One row of the per-language table: macro-F1 for each setting (None: not there)."""

    name: str  # a language code, "mean" or "all rows"
    rows: int | None
    f1: list
    languages: int | None = None  # the mean's: over how many (the task's ranking number)


def language_rows(split_report: dict) -> list[LanguageRow]:
    """Macro-F1 per language (one row each), the mean over languages and all rows
    pooled, for each setting of `SETTINGS`: what the text and HTML tables show."""
    keys = list(SETTINGS)

    def f1(key, lang=None):
        section = split_report.get(key)
        if section is None:
            return None
        rep = section["overall"] if lang is None else section["per_language"].get(lang, {})
        return rep["macro"]["f1"] if "macro" in rep else None

    tuned = split_report["tuned_thresholds"]
    rows = [LanguageRow(lang, r.get("n", 0), [f1(k, lang) for k in keys])
            for lang, r in tuned.get("per_language", {}).items()]
    means = [split_report[k].get(MEAN) or language_mean(split_report[k]["per_language"])
             if k in split_report else None for k in keys]
    count = next((m["languages"] for m in means if m), 0)
    rows.append(LanguageRow("mean", None, [m["macro_f1"] if m else None for m in means],
                            languages=count))
    rows.append(LanguageRow("all rows", tuned["overall"].get("n", 0), [f1(k) for k in keys]))
    return rows


def format_language_table(split_report: dict, split: str, decides: str = "") -> str:
    """Macro-F1 per language (one row each), the mean over languages and all rows
    pooled, for each setting of `SETTINGS`; `decides` (a setting key) is starred."""
    keys = list(SETTINGS)

    def cell(value) -> str:
        return f"{value:>11.4f}" if value is not None else f"{'-':>11}"

    star = {k: "*" if k == decides else "" for k in keys}
    lines = [f"{split}: macro-F1 per language (at 0.5 | thresholds tuned on validation: "
             "global | per language)" + ("; * the run decides with it" if decides else ""),
             f"{'language':<10}{'rows':>7}" + "".join(f"{SETTING_NAMES[k][1] + star[k]:>11}"
                                                       for k in keys)]
    for row in language_rows(split_report):
        n = f"{row.rows:>7d}" if row.rows is not None else f"{'':>7}"
        name = row.name if row.languages is None else f"mean ({row.languages})"
        lines.append(f"{name:<10}{n}" + "".join(cell(v) for v in row.f1))
    return "\n".join(lines)


def format_console_report(report: dict) -> str:
    """What training (and `kemo report`) prints: per split, the overall reports at 0.5
    and at the thresholds the run decides with, then the per-language table."""
    decides = report.get("meta", {}).get("decides_with", "tuned_thresholds")
    blocks = []
    for split in ("validation", "dev"):
        if split not in report:
            continue
        shown = ["threshold_0.5", "tuned_thresholds"]
        if decides not in shown and decides in report[split]:
            shown.append(decides)
        for key in shown:
            if key in report[split]:
                blocks.append(format_report(report[split][key]["overall"],
                                            f"{split}, {SETTINGS[key]}:"))
        blocks.append(format_language_table(report[split], split, decides))
    validation = report.get("meta", {}).get("validation")
    if validation:  # data.validation = "dev"
        blocks.append(f"note: validation is {validation}")
    return "\n\n".join(blocks)
