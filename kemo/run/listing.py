"""The runs under a folder, one summary each, for `kemo runs`: light (JSON and TOML only).

A run directory is a folder holding `config.toml` or `run.json`. Its summary comes from
`run.json` when the run has one, and otherwise (runs from before the manifest) from
`config.toml`, `report.json`, `history.json` and the files' times. F1 figures are the
shared task's number: macro-F1, averaged over languages when the run has several.

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
from kemo.run.manifest import read_manifest

MEAN = "mean_over_languages"  # kemo.evaluation.report's key (not imported: it needs sklearn)
COLUMNS = (("name", "run"), ("date", "date"), ("config", "config"),
           ("languages", "languages"), ("epochs", "epochs"), ("val_f1_05", "val@0.5"),
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
    per_lang = section.get("per_language") or {}
    scored = [r["macro"]["f1"] for r in per_lang.values()
              if isinstance(r, dict) and isinstance(r.get("macro"), dict)]
    if len(scored) > 1:
        mean = section.get(MEAN) or {}
        return mean.get("macro_f1", sum(scored) / len(scored))
    overall = section.get("overall") or {}
    return (overall.get("macro") or {}).get("f1")


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
    """One run's summary (keys: `COLUMNS`' names, plus path, kind, manifest, finished)."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        cfg = tomllib.loads((path / L.CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        cfg = {}
    report = _json(path / L.REPORT)
    report = report if isinstance(report, dict) else None
    meta = (report or {}).get("meta") or {}
    epochs = meta.get("epochs_run")
    if epochs is None:
        history = _json(path / L.HISTORY_JSON)
        epochs = len(history) if isinstance(history, list) else None
    date = (manifest or {}).get("started")
    if date is None:
        first = next((path / n for n in (L.CONFIG, L.MANIFEST) if (path / n).exists()), path)
        date = _utc(first.stat().st_mtime)
    kind = (manifest or {}).get("kind") or ("ensemble" if (path / L.ENSEMBLE).exists()
                                             else "train")
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    languages = data.get("languages") or []
    row = {"name": path.name, "path": str(path), "kind": kind, "date": date,
           "config": cfg.get("name"), "languages": list(languages) if isinstance(
               languages, list) else [str(languages)],
           "epochs": None if kind == "ensemble" else epochs,
           "finished": report is not None, "manifest": manifest is not None,
           "size": _size(path)}
    for split, short in (("validation", "val"), ("dev", "dev")):
        section = (report or {}).get(split) or {}
        row[f"{short}_f1_05"] = _macro_f1(section, "threshold_0.5")
        row[f"{short}_f1_tuned"] = _macro_f1(section, "tuned_thresholds")
    row["status"] = "finished" if row["finished"] else "not finished"
    return row


def list_runs(folder) -> list[dict]:
    """Summaries of `folder` (when it is a run) or of the runs directly inside it, by
    date then name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder" if folder.exists() else
                         f"{folder}: not found (give the folder your runs are in)")
    if is_run_dir(folder):
        return [summarise(folder)]
    runs = [summarise(p) for p in sorted(folder.iterdir()) if is_run_dir(p)]
    return sorted(runs, key=lambda r: (r["date"], r["name"]))


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
