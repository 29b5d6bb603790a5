"""A run's results as plain text: the tables and the line training and `kemo report` print.

Read from a `kemo.run.report_file.Report` (report.json): `format_console_report` gives,
per split, the overall classification reports at 0.5 and at the setting the run decides
with, then macro-F1 per language (`format_language_table`, one row per language, the
mean over languages and all rows pooled); `result_line` the one line every training
ends with; `format_intensity_table` an intensity run's (Track B) Pearson r per language.
Library code returns the text; `kemo.cli` prints it.

Example:
    report = Report.read(run_dir)
    print(format_console_report(report))
    print(result_line(report))
    # dev macro-F1: 0.6800 (thresholds tuned on validation; 0.7098 at 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

from kemo.run.report_file import (
    AVERAGES, DEV, F1, LANGUAGES, MACRO, MACRO_F1, MEAN, MEAN_R, N, OVERALL, PER_LABEL,
    PER_LANGUAGE, PRECISION, R, RECALL, SPLITS, SUPPORT, VALIDATION, IntensityScore, Report,
    Setting,
)


def format_report(scores: dict, title: str) -> str:
    """A plain-text table of one `classification_report` dict."""
    w = max([12] + [len(n) + 2 for n in scores[PER_LABEL]])  # a long name widens it
    lines = [title, f"{'label':<{w}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, m in scores[PER_LABEL].items():
        lines.append(f"{name:<{w}}{m[PRECISION]:>10.4f}{m[RECALL]:>10.4f}{m[F1]:>10.4f}"
                     f"{m[SUPPORT]:>9d}")
    for avg in AVERAGES:
        if avg in scores:
            m = scores[avg]
            lines.append(f"{avg + ' avg':<{w}}{m[PRECISION]:>10.4f}{m[RECALL]:>10.4f}"
                         f"{m[F1]:>10.4f}{scores[N]:>9d}")
    return "\n".join(lines)


@dataclass
class LanguageRow:
    """One row of the per-language table: macro-F1 for each setting (None: not there)."""

    name: str  # a language code, "mean" or "all rows"
    rows: int | None
    f1: list
    languages: int | None = None  # the mean's: over how many (the task's ranking number)


def language_rows(split_scores: dict) -> list[LanguageRow]:
    """Macro-F1 per language (one row each), the mean over languages and all rows
    pooled, for each `Setting`: what the text and HTML tables show. A mean a report
    written before it lacks is computed here (the file is not changed)."""
    from kemo.evaluation.classification_scores import language_mean

    def f1(key, lang=None):
        section = split_scores.get(key)
        if section is None:
            return None
        rep = section[OVERALL] if lang is None else section[PER_LANGUAGE].get(lang, {})
        return rep[MACRO][F1] if MACRO in rep else None

    tuned = split_scores[Setting.GLOBAL]
    rows = [LanguageRow(lang, r.get(N, 0), [f1(k, lang) for k in Setting])
            for lang, r in tuned.get(PER_LANGUAGE, {}).items()]
    means = [split_scores[k].get(MEAN) or language_mean(split_scores[k][PER_LANGUAGE])
             if k in split_scores else None for k in Setting]
    count = next((m[LANGUAGES] for m in means if m), 0)
    rows.append(LanguageRow("mean", None, [m[MACRO_F1] if m else None for m in means],
                            languages=count))
    rows.append(LanguageRow("all rows", tuned[OVERALL].get(N, 0), [f1(k) for k in Setting]))
    return rows


def format_language_table(split_scores: dict, split: str, decides: str = "") -> str:
    """Macro-F1 per language (one row each), the mean over languages and all rows
    pooled, for each `Setting`; `decides` (a setting) is starred."""
    def cell(value) -> str:
        return f"{value:>11.4f}" if value is not None else f"{'-':>11}"

    star = {k: "*" if k == decides else "" for k in Setting}
    lines = [f"{split}: macro-F1 per language (at 0.5 | thresholds tuned on validation: "
             "global | per language)" + ("; * the run decides with it" if decides else ""),
             f"{'language':<10}{'rows':>7}" + "".join(f"{k.column + star[k]:>11}"
                                                       for k in Setting)]
    for row in language_rows(split_scores):
        n = f"{row.rows:>7d}" if row.rows is not None else f"{'':>7}"
        name = row.name if row.languages is None else f"mean ({row.languages})"
        lines.append(f"{name:<10}{n}" + "".join(cell(v) for v in row.f1))
    return "\n".join(lines)


def format_console_report(report: Report) -> str:
    """What training (and `kemo report`) prints: per split, the overall reports at 0.5
    and at the thresholds the run decides with, then the per-language table."""
    decides = report.decides_with
    blocks = []
    for split in SPLITS:
        if report.split(split) is None:
            continue
        shown = [Setting.AT_HALF, Setting.GLOBAL]
        if decides not in shown and report.section(split, decides) is not None:
            shown.append(Setting(decides))
        for key in shown:
            if report.section(split, key) is not None:
                blocks.append(format_report(report.section(split, key)[OVERALL],
                                            f"{split}, {key.title}:"))
        blocks.append(format_language_table(report.split(split), split, decides))
    if report.meta.validation:  # data.validation = "dev"
        blocks.append(f"note: validation is {report.meta.validation}")
    return "\n\n".join(blocks)


def result_line(report: Report) -> str:
    """`dev macro-F1: F (how the run decides; F at 0.5)` (validation when the run has
    no dev rows). With several languages F is the mean over languages of macro-F1, the
    shared task's number, and the pooled figure follows. An intensity run: the mean over
    languages of Pearson r."""
    if report.intensity:
        return _intensity_line(report)
    split = DEV if report.split(DEV) is not None else VALIDATION
    decides = report.decides_with
    if report.section(split, decides) is None:
        decides = Setting.AT_HALF
    mean = report.section(split, decides).get(MEAN) or {}
    several = mean.get(LANGUAGES, 1) > 1

    def f1(key):
        if several:
            return report.section(split, key)[MEAN][MACRO_F1]
        return report.macro_f1(split, key)

    what = f"mean over {mean[LANGUAGES]} languages of " if several else ""
    how = Setting(decides).how if decides in list(Setting) else decides
    text = f"{split} {what}macro-F1: {f1(decides):.4f} ({how}"
    if decides != Setting.AT_HALF:
        text += f"; {f1(Setting.AT_HALF):.4f} at 0.5"
    if several:
        text += f"; all rows pooled {report.macro_f1(split, decides):.4f}"
    return text + (")" if split == DEV else "; no dev rows)")


def _intensity_line(report: Report) -> str:
    split = DEV if report.split(DEV) is not None else VALIDATION
    integer = report.section(split, IntensityScore.INTEGER)
    continuous = report.section(split, IntensityScore.CONTINUOUS)
    return (f"{split} mean over {len(integer[PER_LANGUAGE])} language(s) of Pearson r: "
            f"{integer[MEAN_R]:.4f} (integers, cut points tuned on validation; "
            f"{continuous[MEAN_R]:.4f} continuous)")


def format_intensity_table(report: Report) -> str:
    """The language table of an intensity run: Pearson r per language (continuous,
    integer) on validation and dev, then the mean over languages (the official Track B
    number)."""
    splits = [s for s in SPLITS if report.split(s) is not None]
    head = "lang    " + "".join(f"{s[:3]} r   {s[:3]} r(int)  " for s in splits)
    langs = list(dict.fromkeys(
        lg for s in splits for lg in report.section(s, IntensityScore.CONTINUOUS)[PER_LANGUAGE]))
    lines = [head.rstrip()]
    for lang in langs + ["mean"]:
        cells = []
        for s in splits:
            for kind in IntensityScore:
                part = report.section(s, kind)
                v = (part[MEAN_R] if lang == "mean" else
                     part[PER_LANGUAGE].get(lang, {}).get(R))
                cells.append(f"{v:8.3f}" if v is not None else f"{'-':>8}")
        lines.append(f"{lang:<6}" + "  ".join(cells))
    return "\n".join(lines)
