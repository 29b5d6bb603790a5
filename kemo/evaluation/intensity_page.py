"""The HTML page of an intensity run (Track B): Pearson r per emotion and per language,
and confusion tables of intensities (gold x predicted) per emotion and per language.

`make_intensity_report(run_dir)` writes `<run_dir>/report/index.html` (or `out_dir`)
from the run's `report.json` alone (no model, no data): per split (validation, dev) a
table of r per language and emotion, of the continuous scores and of the integers the
cut points give; the validation curve per epoch (`history.json`); and per split,
language and emotion the (K+1) x (K+1) confusion table of intensities, rows the gold
intensity, columns the predicted one. The folder is built aside and published like the
binary page's (`kemo.evaluation.page.REPORT_DIR`: never written over what kemo did not
write).

Example:
    page = make_intensity_report("runs/tiny_track_b").path   # runs/tiny_track_b/report/index.html
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kemo.errors import InputError
from kemo.evaluation.page import CSS, REPORT_DIR, RunReport, _e, _table, read_history
from kemo.run import layout as L

log = logging.getLogger(__name__)

KINDS = (("continuous", "continuous score"), ("integer", "integer intensity (cut points)"))


def pearson_table(split_report: dict, kind: str) -> tuple[list, list]:
    """(header, rows) of r per language (rows) and emotion (columns), then the
    language's mean and, last, the mean over languages."""
    part = split_report[kind]
    langs = part["per_language"]
    labels = list(dict.fromkeys(n for v in langs.values() for n in v["per_label"]))
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    rows = [[lang, v.get("rows", "")] + [cell(v["per_label"].get(n)) for n in labels]
            + [cell(v["r"])] for lang, v in langs.items()]
    rows.append(["mean over languages", ""] + [""] * len(labels) + [cell(part["mean_r"])])
    return ["language", "rows", *labels, "mean r"], rows


def confusion_html(table: list[list[int]], caption: str) -> str:
    """One confusion table: rows gold 0..K, columns predicted 0..K."""
    k = len(table)
    return _table(caption, ["gold \\ predicted", *map(str, range(k))],
                  [[str(g), *row] for g, row in enumerate(table)])


def _confusion_section(split: str, rep: dict) -> list[str]:
    body = [f"<h3>Confusion tables of intensities, {split} (rows gold, columns predicted)</h3>"]
    per_language = dict(rep.get("confusion_per_language") or {})
    if len(per_language) != 1 and rep.get("confusion"):
        per_language = {"all languages": rep["confusion"], **per_language}
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


def intensity_page(run_dir: Path, report: dict, history: list[dict]) -> str:
    """The page's HTML."""
    k = report.get("max_intensity", "K")
    body = [f"<h1>Intensity run report: {_e(run_dir.name)}</h1>",
            f'<p class="meta">{_e(run_dir.resolve())} &middot; intensities 0..{_e(k)} '
            "&middot; official measure: Pearson r per emotion, averaged over the language's "
            "emotions, then over languages</p>"]
    meta = report.get("meta", {})
    if meta.get("zero_shot_languages"):
        body.append(f'<p class="note">Zero-shot (no training rows): '
                    f'{_e(", ".join(meta["zero_shot_languages"]))}</p>')
    body += ["<h2>Training</h2>", *_history_section(history)]
    for split in ("validation", "dev"):
        if split not in report:
            continue
        body.append(f"<h2>{split.capitalize()}</h2>")
        for kind, title in KINDS:
            body.append(_table(f"{split}: Pearson r per emotion and language, {title}",
                               *pearson_table(report[split], kind)))
        body += _confusion_section(split, report[split])
    body += ["<h2>Config</h2>", f"<pre>{_e((run_dir / L.CONFIG).read_text())}</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kemo run {_e(run_dir.name)}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def make_intensity_report(run_dir, out_dir=None) -> RunReport:
    """Write the page (see the module docstring); InputError for a run without a
    readable report.json."""
    from kemo.prediction.trained_run import read_report

    run_dir = Path(run_dir)
    if not (run_dir / L.REPORT).is_file():
        raise InputError(f"run directory {run_dir}: no {L.REPORT} (an unfinished run?)")
    report = read_report(run_dir)  # every file checked before anything is written
    history = read_history(run_dir)
    final = Path(out_dir) if out_dir else run_dir / L.REPORT_DIR
    REPORT_DIR.check(final, not out_dir)
    out = REPORT_DIR.stage(final)
    try:
        (out / "index.html").write_text(intensity_page(run_dir, report, history),
                                        encoding="utf-8")
        REPORT_DIR.publish(final, out, not out_dir)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return RunReport(final / "index.html", report, [])
