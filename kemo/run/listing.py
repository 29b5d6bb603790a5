"""The runs under a folder, one summary each, for `kemo runs`: light (JSON and TOML only).

A run directory is a folder holding `config.toml` or `run.json`. Its summary comes from
`run.json` when the run has one, and otherwise (runs from before the manifest) from
`config.toml`, `report.json`, `history.json` and the files' times. Figures are the
shared task's number (`metric`): macro-F1 for labels, averaged over languages when the
run has several; for an intensity run (Track B) Pearson r averaged over emotions, then
languages, the "@0.5" columns holding r of the continuous scores and the "tuned" ones r
of the integers at the cut points tuned on validation.

Example:
    for row in list_runs("runs"):
        print(row["name"], row["dev_f1_tuned"])
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.manifest import model_changed, read_manifest
from kemo.run.report_file import (
    DEV, F1, FORMAT_KEY, FORMAT_VERSION, INTENSITY, LABEL_KIND, MACRO, MACRO_F1, MEAN, MEAN_R,
    META, OVERALL, PER_LANGUAGE, VALIDATION, IntensityScore, Meta, Setting, report_format,
)
COLUMNS = (("name", "run"), ("date", "date"), ("config", "config"),
           ("languages", "languages"), ("epochs", "epochs"), ("metric", "metric"),
           ("val_f1_05", "val@0.5"),
           ("val_f1_tuned", "val tuned"), ("dev_f1_05", "dev@0.5"),
           ("dev_f1_tuned", "dev tuned"), ("size", "size"), ("status", "status"))


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / L.CONFIG).is_file() or (path / L.MANIFEST).is_file())


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _macro_f1(split: dict, setting: str) -> float | None:
    """Macro-F1 of one setting of a report.json split: the mean over languages when
    the split has several (computed for reports that predate the stored mean)."""
    section = split.get(setting) if isinstance(split, dict) else None
    if not isinstance(section, dict):
        return None
    per_lang = _dict(section.get(PER_LANGUAGE))
    scored = [_dict(r.get(MACRO)).get(F1) for r in per_lang.values() if isinstance(r, dict)]
    scored = [f for f in scored if _number(f) is not None]
    if len(scored) > 1:
        mean = _number(_dict(section.get(MEAN)).get(MACRO_F1))
        return mean if mean is not None else sum(scored) / len(scored)
    return _number(_dict(_dict(section.get(OVERALL)).get(MACRO)).get(F1))


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarise(path) -> dict:
    """One run's summary (keys: `COLUMNS`' names, plus path, kind, manifest, finished);
    a field of the wrong type reads as unknown, and `status` says what is damaged."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        cfg = tomllib.loads((path / L.CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        cfg = {}
    report = _json(path / L.REPORT)
    report = report if isinstance(report, dict) else None
    epochs = Meta.from_dict(_dict(_dict(report).get(META))).epochs_run
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        history = _json(path / L.HISTORY_JSON)
        epochs = len(history) if isinstance(history, list) else None
    date = _dict(manifest).get("started")
    if not isinstance(date, str):
        first = next((path / n for n in (L.CONFIG, L.MANIFEST) if (path / n).exists()), path)
        date = _utc(first.stat().st_mtime)
    kind = _dict(manifest).get("kind")
    if kind not in ("train", "ensemble"):
        kind = "ensemble" if (path / L.ENSEMBLE).exists() else "train"
    languages = _dict(cfg.get("data")).get("languages") or []
    row = {"name": path.name, "path": str(path), "kind": kind, "date": date,
           "config": None if cfg.get("name") is None else str(cfg.get("name")),
           "languages": [str(x) for x in languages] if isinstance(languages, list)
           else [str(languages)],
           "epochs": None if kind == "ensemble" else epochs,
           "finished": report is not None, "manifest": manifest is not None,
           "size": _size(path)}
    intensity = _dict(report).get(LABEL_KIND, _dict(cfg.get("data")).get("label_kind")) \
        == INTENSITY
    row["metric"] = "pearson r" if intensity else "macro-F1"
    for split, short in ((VALIDATION, "val"), (DEV, "dev")):
        section = _dict(_dict(report).get(split))
        if intensity:  # Track B: r of the continuous scores, then of the integers
            for key, score in (("05", IntensityScore.CONTINUOUS),
                               ("tuned", IntensityScore.INTEGER)):
                row[f"{short}_f1_{key}"] = _number(_dict(section.get(score)).get(MEAN_R))
        else:
            row[f"{short}_f1_05"] = _macro_f1(section, Setting.AT_HALF)
            row[f"{short}_f1_tuned"] = _macro_f1(section, Setting.GLOBAL)
    problem = _problem(path, manifest, report)
    row["finished"] = row["finished"] and problem is None
    row["status"] = f"damaged: {problem}" if problem else \
        "finished" if row["finished"] else "not finished"
    return row


def _problem(path: Path, manifest, report) -> str | None:
    """What makes a run unusable though its files are there, or None."""
    if (path / L.REPORT).exists() and report is None:
        return f"{L.REPORT} is not a JSON object"
    if report is None:
        return None
    if not 1 <= report_format(report) <= FORMAT_VERSION:
        return f"{L.REPORT} format {report.get(FORMAT_KEY, 1)!r} is not one this kemo reads"
    if not isinstance(report.get(VALIDATION), dict):
        return f"{L.REPORT}, field '{VALIDATION}': not a table"
    if model_changed(path, manifest):
        return f"{L.MODEL} is not the model {L.MANIFEST} recorded"
    return None


def _unreadable(path: Path, error: Exception) -> dict:
    """The row of a run `summarise` could not read: its name and the problem."""
    row = {k: None for k, _ in COLUMNS}
    first = str(error).splitlines()[0][:120] if str(error) else ""
    return row | {"name": path.name, "path": str(path), "kind": "train", "date": "",
                  "finished": False, "manifest": False, "languages": [],
                  "status": f"unreadable: {type(error).__name__}: {first}"}


def _row(path: Path) -> dict:
    try:
        return summarise(path)
    except Exception as e:  # one malformed run is a row with its problem, not the end
        return _unreadable(path, e)


def list_runs(folder) -> list[dict]:
    """Summaries of `folder` (when it is a run) or of the runs directly inside it, by
    date then name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder" if folder.exists() else
                         f"{folder}: not found (give the folder your runs are in)")
    if is_run_dir(folder):
        return [_row(folder)]
    runs = [_row(p) for p in sorted(folder.iterdir()) if is_run_dir(p)]
    return sorted(runs, key=lambda r: (str(r["date"]), r["name"]))


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_runs(rows: list[dict]) -> str:
    """A text table, one line per run (`-`: not known or not written)."""
    def cell(row, key):
        v = row[key]
        if v is None:
            return "-"
        if key == "size":
            return _human(v)
        if key == "languages":
            return ",".join(v) if len(v) <= 3 else f"{len(v)} languages"
        if key == "date":
            return v.replace("T", " ")[:16]
        if key.endswith(("_05", "_tuned")):
            return f"{v:.4f}"
        if key == "name" and row["kind"] == "ensemble":
            return f"{v} (ensemble)"
        return str(v)

    table = [[h for _, h in COLUMNS]] + [[cell(r, k) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in table)
