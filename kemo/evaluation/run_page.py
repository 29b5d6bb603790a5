"""The HTML page of a run (`kemo report`): curves, precision-recall, label distribution, tables.

`make_run_page(run_dir)` writes `<run_dir>/report/index.html` and the PNG figures it
shows (relative links: the folder opens offline and can be copied as a whole; the
figures are drawn by `kemo.evaluation.plots`):

- loss per epoch (train and validation), loss per label per epoch, macro-F1 per epoch
  (from `history.json`, else `history.csv`) and a table of the validation numbers per
  epoch: the number the run monitored first (for several languages the mean over
  languages of macro-F1, all rows pooled beside it), the epoch whose weights it kept
  marked;
- per-label precision-recall curves with the tuned threshold (and 0.5) marked, on the
  validation split: the model is reloaded and the split re-created exactly as training
  did (`kemo.data.splits.load_data`: same config, same seed). Without the training data it
  falls back to the dev split (`predictions_dev.csv` + dev labels); the page says which;
- label distribution before/after sampling (`label_distribution.json`);
- the classification reports of `report.json` (`kemo.run.report_file.Report`):
  validation and dev, threshold 0.5, tuned (global) and tuned per language, overall and
  per language, with a table of macro-F1 per language and its mean over languages. A run
  trained before per-language thresholds gets them for the page from its re-created
  validation split (`kemo.evaluation.migrate`); the run directory is only read: the page
  folder is all `kemo report` writes.

Example:
    page = make_run_page("runs/tiny", data_dir="../shared/data/brighter/track_a").path
    # open runs/tiny/report/index.html in a browser
    result = make_run_page("runs/tiny")  # .path, .report (completed for the page), .notes
"""

from __future__ import annotations

import csv
import html
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kemo.errors import InputError
from kemo.owned_dir import OwnedDir
from kemo.evaluation.plots import (
    f1_lines, monitored_key, plot_curves, plot_distribution, plot_pr_curves,
)
from kemo.run import layout as L
from kemo.run.report_file import (
    AVERAGES, F1, MACRO, META_RECORDS, N, OVERALL, PER_LABEL, PER_LANGUAGE, PRECISION, RECALL,
    SPLITS, SUPPORT, VALIDATION, Report, Setting,
)
from kemo.evaluation.split_probs import available_probs
from kemo.prediction.thresholds import UNTUNED_THRESHOLD, ThresholdSearch

log = logging.getLogger(__name__)

# The page's folder: built aside, marked, never written over what kemo did not write.
PAGE_DIR = OwnedDir("report directory", ".kemo-report", legacy=(".html", ".png"))


# ------------------------------------------------------------------------ run files

def read_history(run_dir) -> list[dict]:
    """Per-epoch logs (epoch numbered from 1): `history.json`, else `history.csv`."""
    run_dir = Path(run_dir)
    if (run_dir / L.HISTORY_JSON).is_file():
        from kemo.run.json_files import read_history as read_history_json

        return read_history_json(run_dir / L.HISTORY_JSON)
    if (run_dir / L.HISTORY_CSV).is_file():
        with open(run_dir / L.HISTORY_CSV, newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            return [{k: (int(v) + 1 if k == "epoch" else float(v)) for k, v in r.items()}
                    for r in rows]
        except (TypeError, ValueError) as e:
            raise InputError(f"{run_dir / L.HISTORY_CSV}: not a kemo history ({e})") from None
    return []


# ------------------------------------------------------------------------- HTML

def _meta_value(key: str, value):
    """A report.json meta value as the page header shows it: the CPU as one phrase,
    a list by its length."""
    if key == "cpu" and isinstance(value, dict):
        from kemo.machine import describe_cpu

        return describe_cpu(value)
    return len(value) if isinstance(value, list) else value


def _e(x) -> str:
    return html.escape(str(x))


def scores_table(scores: dict, caption: str) -> str:
    """One `kemo.evaluation.classification_scores.classification_report` dict as an
    HTML table."""
    head = ("<tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th>support</th></tr>")
    rows = [f"<tr><td>{_e(n)}</td><td>{m[PRECISION]:.4f}</td><td>{m[RECALL]:.4f}</td>"
            f"<td>{m[F1]:.4f}</td><td>{m[SUPPORT]}</td></tr>"
            for n, m in scores.get(PER_LABEL, {}).items()]
    for avg in AVERAGES:
        if avg in scores:
            m = scores[avg]
            cls = ' class="main"' if avg == MACRO else ""
            rows.append(f"<tr{cls}><td>{avg} avg</td><td>{m[PRECISION]:.4f}</td>"
                        f"<td>{m[RECALL]:.4f}</td><td>{m[F1]:.4f}</td>"
                        f"<td>{scores.get(N, '')}</td></tr>")
    return (f"<table><caption>{_e(caption)}</caption>{head}{''.join(rows)}</table>")


def language_table(split_scores: dict, split: str, decides: str = "") -> str:
    """Macro-F1 per language (rows) for each setting (columns), the mean over languages
    (the shared task's ranking number) and all rows pooled:
    `kemo.evaluation.result_text.language_rows`, as the console table shows them."""
    from kemo.evaluation.result_text import language_rows

    head = "".join(f"<th>macro-F1, {_e(k.page_title)}{' *' if k == decides else ''}</th>"
                   for k in Setting)
    rows = []
    for row in language_rows(split_scores):
        name, tr = row.name, "<tr>"
        if row.languages is not None:  # the mean over languages, spelled out
            n = row.languages
            name, tr = f"mean over {n} language{'s' if n != 1 else ''}", '<tr class="main">'
        cells = "".join(f"<td>{v:.4f}</td>" if v is not None else "<td>-</td>" for v in row.f1)
        count = "" if row.rows is None else row.rows
        rows.append(f"{tr}<td>{_e(name)}</td><td>{count}</td>{cells}</tr>")
    note = ("; * the run decides with it" if decides else "")
    return (f"<table><caption>{_e(split)}, macro-F1 per language (thresholds tuned on "
            f"validation{_e(note)})</caption><tr><th>language</th><th>rows</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def _split_section(split: str, split_scores: dict, decides: str = "") -> str:
    parts = [f"<h3>{_e(split)}</h3>"]
    langs = list(split_scores.get(Setting.GLOBAL, {}).get(PER_LANGUAGE, {}))
    if len(langs) > 1:  # the mean over languages (the run's number) before the pooled rows
        parts.append(language_table(split_scores, split, decides))
    parts.append('<div class="row">')
    for key in Setting:
        if key in split_scores:
            parts.append(scores_table(split_scores[key][OVERALL],
                                      f"{split}, {key.page_title}, all rows"))
    parts.append("</div>")
    if langs:
        if len(langs) == 1:
            parts.append(language_table(split_scores, split, decides))
        parts.append(f"<details><summary>{_e(split)}: full table per language</summary>"
                     '<div class="row">')
        for lang in langs:
            for key in Setting:
                r = split_scores.get(key, {}).get(PER_LANGUAGE, {}).get(lang)
                if r:
                    parts.append(scores_table(r, f"{split}, {lang}, {key.page_title}"))
        parts.append("</div></details>")
    return "\n".join(parts)


CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1150px; color: #222; }
h1 { margin-bottom: 4px; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
.meta { color: #555; }
.note { background: #f6f6f0; border-left: 4px solid #bba; padding: 6px 10px; }
.warn { background: #fff6e5; border-left-color: #e0a030; }
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


@dataclass
class RunPage:
    """What `make_run_page` wrote and showed: the page, the report it shows (completed
    for the page where the run's report.json lacks a setting), and notes."""

    path: Path
    report: Report | None
    notes: list[str] = field(default_factory=list)


def _complete(run_dir: Path, report: Report, thresholds, data,
              data_dir=None) -> tuple[Report, list[str]]:
    """`report` with the per-language comparison a run trained before it lacks
    (`kemo.evaluation.migrate`), computed for the page: report.json is not changed."""
    from kemo.evaluation.migrate import backfill_report

    fill = backfill_report(run_dir, report, thresholds, data, data_dir)  # dev: same root
    notes = list(fill.notes)
    if fill.added:
        notes.append(f"added for this page: {', '.join(fill.added)} ({run_dir / L.REPORT} "
                     "is not changed)")
    return fill.report, notes


def make_run_page(run_dir, data_dir=None, out_dir=None) -> RunPage:
    """Write `<out_dir or run_dir/report>/index.html` and its PNGs; the run directory
    is only read (a report.json without the per-language comparison, from a run
    trained before it, is completed for the page, not in the file)."""
    run_dir = Path(run_dir)
    if not (run_dir / L.CONFIG).is_file():
        raise InputError(f"run directory {run_dir}: no config.toml (not a kemo run directory)")
    from kemo.prediction.trained_run import read_run_state

    # Every file the page reads is checked before anything is written.
    state = read_run_state(run_dir, finished=False)
    history = read_history(run_dir)
    dist, names = state.distribution, state.label_names or []
    thresholds = (state.thresholds or ThresholdSearch.untuned(names)).thresholds
    final = Path(out_dir) if out_dir else run_dir / L.REPORT_DIR
    legacy = not out_dir  # <run>/report of an older kemo: index.html and figures only
    PAGE_DIR.check(final, legacy)  # never overwrite what kemo did not write
    out = PAGE_DIR.stage(final)  # built aside, renamed into place when complete
    try:
        result = _write_page(run_dir, data_dir, out, state, history, dist, names, thresholds)
        PAGE_DIR.publish(final, out, legacy)
    except KeyboardInterrupt:
        log.warning(f"interrupted: report directory {final}: "
                    + ("the earlier report is kept as it was" if final.exists() else "not written")
                    + "; nothing partial is left")
        raise
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return RunPage(final / "index.html", result.report, result.notes)


def _write_page(run_dir, data_dir, out, state, history, dist, names, thresholds) -> RunPage:
    """The page and its figures, into the folder `out`."""
    report = state.report
    meta = report.meta.to_dict() if report else {}
    body = [f"<h1>Run report: {_e(run_dir.name)}</h1>",
            f'<p class="meta">{_e(run_dir.resolve())}</p>'] + _meta_line(meta)
    body += [f'<p class="note warn">{_e(n)}</p>' for n in run_notes(report, state.config)]
    best = (report.meta.best_epoch_restored or None) if report else None
    body += _curves_section(history, names, out, best)
    body.append("<h2>Precision-recall per label</h2>")
    data, why = available_probs(run_dir, data_dir) if names else (None, "no thresholds.json")
    notes = []
    if report and state.thresholds:
        report, notes = _complete(run_dir, report, state.thresholds, data, data_dir)
    body += _pr_section(data, why, names, thresholds, out)
    body.append("<h2>Label distribution</h2>")
    if dist:
        plot_distribution(dist, out / "label_distribution.png")
        body.append('<img src="label_distribution.png" alt="label distribution">')
    else:
        body.append('<p class="note">No label_distribution.json in the run directory.</p>')
    body += _reports_section(report, notes)
    body.append("<h2>Config</h2>")
    body.append(f"<pre>{_e((run_dir / L.CONFIG).read_text())}</pre>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kemo run {_e(run_dir.name)}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return RunPage(path, report, notes)


def _meta_line(meta: dict) -> list[str]:
    if not meta:
        return []
    return ['<p class="meta">' + " &middot; ".join(
        f"{_e(k.replace('_', ' '))}: {_e(_meta_value(k, v))}"
        for k, v in meta.items() if v is not None and k not in META_RECORDS) + "</p>"]


def run_notes(report: Report | None, cfg) -> list[str]:
    """What the run warned of (report.json's `meta.notes`); for a run written before
    them, the small-validation warning worked out from its report and config."""
    from kemo.data.splits import small_validation_note

    if report is None:
        return []
    notes = report.meta.notes
    if isinstance(notes, list) or report.meta.decides_with == Setting.AT_HALF:
        return [str(n) for n in notes or []]
    overall = (report.section(VALIDATION, Setting.GLOBAL) or {}).get(OVERALL, {})
    if N not in overall or report.members is not None:
        return []
    note = small_validation_note(overall[N], {name: m[SUPPORT] for name, m in
                                              overall.get(PER_LABEL, {}).items()}, cfg.data)
    return [note] if note else []


def _curves_section(history, names, out, best_epoch=None) -> list[str]:
    body = ["<h2>Training curves</h2>"]
    figs = plot_curves(history, names, out, best_epoch)
    if not figs:
        body.append('<p class="note">No history.json or history.csv in the run directory.</p>')
    small = [f for f in ("loss.png", "macro_f1.png") if f in figs]
    body.append('<div class="row">' + "".join(f'<img src="{f}" alt="{_e(figs[f])}">'
                                              for f in small) + "</div>")
    body += [f'<img src="{f}" alt="{_e(t)}">' for f, t in figs.items() if f not in small]
    return body + [history_table(history, best_epoch)] if history else body


def history_table(history, best_epoch=None) -> str:
    """Per epoch: train and validation loss, then the macro-F1 lines of the figure
    (`f1_lines`: the monitored validation number first, marked); the row of
    `best_epoch` (the weights the run kept) highlighted."""
    lines = f1_lines(history)
    keys = [k for k in ("loss", "val_loss") if k in history[0]] + [k for k, _, _ in lines]
    heads = {"loss": "train loss", "val_loss": "validation loss",
             **{k: f"macro-F1, {label}" for k, label, _ in lines}}
    rows = []
    for h in history:
        tr = '<tr class="main">' if h["epoch"] == best_epoch else "<tr>"
        rows.append(f"{tr}<td>{h['epoch']}</td>" + "".join(
            f"<td>{h[k]:.4f}</td>" if isinstance(h.get(k), (int, float)) else "<td>-</td>"
            for k in keys) + "</tr>")
    monitored = heads.get(monitored_key(history), "").removeprefix("macro-F1, ").removesuffix(
        " (monitored)")
    caption = ("Per epoch (threshold 0.5)"
               + (f"; the run monitored macro-F1, {monitored}" if monitored else "")
               + (f"; highlighted: epoch {best_epoch}, whose weights it kept"
                  if best_epoch else ""))
    return (f"<table><caption>{_e(caption)}</caption><tr><th>epoch</th>"
            + "".join(f"<th>{_e(heads[k])}</th>" for k in keys) + "</tr>"
            + "".join(rows) + "</table>")


def _pr_section(data, why, names, thresholds, out) -> list[str]:
    if data is None:
        return [f'<p class="note">Not drawn: {_e(why)}. Pass --data-dir (or set '
                "$KEMO_DATA_DIR) to the Track A root the run was trained on.</p>"]
    source = ("validation split (carved from train; the thresholds were tuned on it)"
              if data.split == "validation" else
              "dev split (the validation split could not be re-created; the thresholds "
              "were tuned on validation, not dev)")
    body = [f'<p class="note">Computed on the <b>{_e(source)}</b>: {_e(data.note)}.'
            " Red dot: the run's tuned threshold; orange square: 0.5.</p>"]
    rows = plot_pr_curves(data, [thresholds[names.index(n)] if n in names
                                 else UNTUNED_THRESHOLD for n in data.label_names],
                          out / "pr_curves.png")
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
    return body


def _table(caption: str, header, rows) -> str:
    return (f"<table><caption>{_e(caption)}</caption><tr>"
            + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                      for r in rows) + "</table>")


def _reports_section(report: Report | None, notes) -> list[str]:
    body = ["<h2>Classification reports</h2>"]
    if not report:
        return body + ['<p class="note">No report.json in the run directory.</p>'] + \
            [f'<p class="note">{_e(note)}</p>' for note in notes]
    backfilled = report.meta.backfilled  # by an older kemo report, in the file
    for note in notes + ([f"report.json completed by kemo report: {backfilled['how']}"]
                         if backfilled and not notes else []):
        body.append(f'<p class="note">{_e(note)}</p>')
    if report.meta.validation:  # data.validation = "dev": dev scores are not held out
        body.append(f'<p class="note"><b>Validation: {_e(report.meta.validation)}.</b></p>')
    if report.members is not None:  # an ensemble (kemo.ensemble)
        from kemo.evaluation.ensemble_tables import members_table, served_by_table

        body.append("<h3>Ensemble members</h3>")
        body.append(_table("Each member and the ensemble, macro-F1 and dev F1 per label "
                           "(each with its own tuned thresholds)", *members_table(report)))
        if report.meta.served_by:
            body.append(_table("Which members served (were averaged for) each language",
                               *served_by_table(report)))
    for split in SPLITS:
        if report.split(split) is not None:
            body.append(_split_section(split, report.split(split), report.decides_with))
    return body
