"""The HTML page of an intensity run (Track B): Pearson r per emotion and per language,
and confusion tables of intensities (gold x predicted) per emotion and per language.

`make_intensity_page(run_dir)` writes `<run_dir>/report/index.html` (or `out_dir`)
from the run's `report.json` alone (no model, no data): per split (validation, dev) a
table of r per language and emotion, of the continuous scores and of the integers the
cut points give; the validation curve per epoch (`history.json`); and per split,
language and emotion the (K+1) x (K+1) confusion table of intensities, rows the gold
intensity, columns the predicted one. The folder is built aside and published like the
binary page's (`kemo.evaluation.run_page.PAGE_DIR`: never written over what kemo did
not write).

Example:
    page = make_intensity_page("runs/tiny_track_b").path   # runs/tiny_track_b/report/index.html
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kemo.errors import InputError
from kemo.evaluation.run_page import CSS, PAGE_DIR, RunPage, _e, _table, read_history
from kemo.run import layout as L
from kemo.run.report_file import (
    CONFUSION, CONFUSION_PER_LANGUAGE, MEAN_R, PER_LABEL, PER_LANGUAGE, R, ROWS, SPLITS,
    IntensityScore, Report,
)

log = logging.getLogger(__name__)

KINDS = ((IntensityScore.CONTINUOUS, "continuous score"),
         (IntensityScore.INTEGER, "integer intensity (cut points)"))


def pearson_table(split_scores: dict, kind: str) -> tuple[list, list]:
    """(header, rows) of r per language (rows) and emotion (columns), then the
    language's mean and, last, the mean over languages."""
    part = split_scores[kind]
    langs = part[PER_LANGUAGE]
    labels = list(dict.fromkeys(n for v in langs.values() for n in v[PER_LABEL]))
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    rows = [[lang, v.get(ROWS, "")] + [cell(v[PER_LABEL].get(n)) for n in labels]
            + [cell(v[R])] for lang, v in langs.items()]
    rows.append(["mean over languages", ""] + [""] * len(labels) + [cell(part[MEAN_R])])
    return ["language", "rows", *labels, "mean r"], rows


def confusion_html(table: list[list[int]], caption: str) -> str:
    """One confusion table: rows gold 0..K, columns predicted 0..K."""
    k = len(table)
    return _table(caption, ["gold \\ predicted", *map(str, range(k))],
                  [[str(g), *row] for g, row in enumerate(table)])


def _confusion_section(split: str, split_scores: dict) -> list[str]:
    body = [f"<h3>Confusion tables of intensities, {split} (rows gold, columns predicted)</h3>"]
    per_language = dict(split_scores.get(CONFUSION_PER_LANGUAGE) or {})
    if len(per_language) != 1 and split_scores.get(CONFUSION):
        per_language = {"all languages": split_scores[CONFUSION], **per_language}
    if not per_language:
        return body + ['<p class="note">No confusion tables in report.json.</p>']
    for lang, tables in per_language.items():
        body.append(f"<h4>{_e(lang)}</h4><div class=\"row\">")
        body += [confusion_html(t, f"{lang}, {label}") for label, t in tables.items()]
        body.append("</div>")
    return body


def _history_section(history: list[dict]) -> list[str]:
    keys = [k for k in ("loss", "val_loss", "val_pearson_r", "val_language_mean_r")
            if any(k in h for h in history)]
    if not history or not keys:
        return ['<p class="note">No history.json or history.csv in the run directory.</p>']
    rows = [[h.get("epoch", i + 1), *(f"{h[k]:.4f}" if isinstance(h.get(k), (int, float))
                                      else "-" for k in keys)] for i, h in enumerate(history)]
    return [_table("Per epoch (validation r: the official measure of the continuous scores)",
                   ["epoch", *keys], rows)]


def intensity_page(run_dir: Path, report: Report, history: list[dict]) -> str:
    """The page's HTML."""
    k = report.max_intensity if report.max_intensity is not None else "K"
    body = [f"<h1>Intensity run report: {_e(run_dir.name)}</h1>",
            f'<p class="meta">{_e(run_dir.resolve())} &middot; intensities 0..{_e(k)} '
            "&middot; official measure: Pearson r per emotion, averaged over the language's "
            "emotions, then over languages</p>"]
    if report.meta.zero_shot_languages:
        body.append(f'<p class="note">Zero-shot (no training rows): '
                    f'{_e(", ".join(report.meta.zero_shot_languages))}</p>')
    body += ["<h2>Training</h2>", *_history_section(history)]
    for split in SPLITS:
        if report.split(split) is None:
            continue
        body.append(f"<h2>{split.capitalize()}</h2>")
        for kind, title in KINDS:
            body.append(_table(f"{split}: Pearson r per emotion and language, {title}",
                               *pearson_table(report.split(split), kind)))
        body += _confusion_section(split, report.split(split))
    body += ["<h2>Config</h2>", f"<pre>{_e((run_dir / L.CONFIG).read_text())}</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kemo run {_e(run_dir.name)}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def make_intensity_page(run_dir, out_dir=None) -> RunPage:
    """Write the page (see the module docstring); InputError for a run without a
    readable report.json. The run directory is only read."""
    run_dir = Path(run_dir)
    if not (run_dir / L.REPORT).is_file():
        raise InputError(f"run directory {run_dir}: no {L.REPORT} (an unfinished run?)")
    report = Report.read(run_dir)  # every file checked before anything is written
    history = read_history(run_dir)
    final = Path(out_dir) if out_dir else run_dir / L.REPORT_DIR
    PAGE_DIR.check(final, not out_dir)
    out = PAGE_DIR.stage(final)
    try:
        (out / "index.html").write_text(intensity_page(run_dir, report, history),
                                        encoding="utf-8")
        PAGE_DIR.publish(final, out, not out_dir)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return RunPage(final / "index.html", report, [])
