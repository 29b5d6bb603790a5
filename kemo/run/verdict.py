"""What a folder is to kemo before a run is written into it: the rule of
`kemo.owned_dir.check_output` for run directories, and the advice that matches.

A folder is a run kemo wrote when its `run.json` manifest says so (`kemo train` or
`kemo ensemble` wrote it) and it holds nothing but the names of `kemo.run.layout`
(hidden files: the lock, temporary files). `train --run-dir` and `ensemble --run-dir`
write into a new or empty folder, or with `--overwrite` replace a finished or failed
run kemo wrote (its entries deleted, after saying so); `train --resume` continues only
an unfinished training run kemo wrote. Anything else is refused in one line naming
what is missing, and advice never points at a folder kemo did not make. Light: no
framework is imported, so a refusal takes a fraction of a second.

Example:
    check_new_run_dir(Path("runs/tour"), overwrite=False)  # InputError if runs/tour is a run
    check_resumable(Path("runs/tour"))                     # InputError unless resumable
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from kemo.errors import InputError
from kemo.owned_dir import check_output
from kemo.run import layout as L
from kemo.run.manifest import read_manifest

log = logging.getLogger(__name__)


# Folders of a run whose marker lists what kemo wrote in them (`kemo.owned_dir`).
_MARKED = {L.REPORT_DIR: ".kemo-report", L.EXPORT_DIR: ".kemo-export",
           L.EXPLANATIONS: ".kemo-explanations"}


def foreign_entries(run_dir: Path) -> list[str]:
    """Entries in `run_dir` kemo did not write: names a run directory never holds, and
    files in `predictions/<x>/`, `report/`, `export/`, `explanations/` their marker
    does not list (folders of an older kemo, unmarked, are not looked into)."""
    from kemo.owned_dir import entries
    from kemo.prediction.input_files import MARKER, written_here

    out = [p.name for p in run_dir.iterdir()
           if not p.name.startswith(".") and p.name not in L.FILES]
    for folder in sorted((run_dir / L.PREDICTIONS).glob("*/")):
        if (folder / MARKER).is_file():
            ours = written_here(folder)
            out += [f"{L.PREDICTIONS}/{folder.name}/{p.name}" for p in folder.iterdir()
                    if not p.name.startswith(".") and p.name not in ours]
    for name, marker in _MARKED.items():
        try:
            listed = json.loads((run_dir / name / marker).read_text())["files"]
            out += [f"{name}/{e}" for e in entries(run_dir / name) if e not in listed]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return sorted(out)


def describe(run_dir: Path) -> tuple[str | None, str]:
    """(kind, what): kind "train" or "ensemble" for a run kemo wrote (its manifest),
    else None; `what` says in words what the folder is ("a finished training run",
    "holds notes.txt, which kemo did not write", ...)."""
    m = read_manifest(run_dir)
    foreign = foreign_entries(run_dir)
    if m is None:
        why = "no run.json says kemo wrote it" if (run_dir / L.CONFIG).exists() \
            else f"it holds {', '.join(foreign[:3]) or 'no run.json'}"
        return None, why
    kind = m.get("kind") if m.get("kind") in ("train", "ensemble") else None
    if kind is None:
        return None, f"its run.json names no kind kemo writes ({m.get('kind')!r})"
    if foreign:
        return None, f"it holds {', '.join(foreign[:3])}, which kemo did not write there"
    state = "finished" if (run_dir / L.REPORT).is_file() else "unfinished"
    return kind, f"an {state} {'training run' if kind == 'train' else 'ensemble'}" \
        .replace("an finished", "a finished")


def check_new_run_dir(run_dir, overwrite: bool, command: str = "train",
                      locked: bool = False) -> bool:
    """The run directory a new run writes: absent or empty, else a run kemo wrote and
    `overwrite` (then True: `clear_run_dir` empties it; `locked`: this process holds
    its lock). InputError otherwise, with the
    advice that matches: a finished run (--overwrite, or another --run-dir), an
    unfinished training run (--resume, or --overwrite), a folder kemo did not write
    (another --run-dir)."""
    from kemo.run.lock import check_unlocked

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"run directory {run_dir}: is a file, not a folder (give --run-dir "
                         "a new folder)")
    if not run_dir.exists() or not any(p.name != L.LOCK for p in run_dir.iterdir()):
        return False
    if not locked:  # (by this process)
        check_unlocked(run_dir)  # a run in progress: name its process
    kind, what = describe(run_dir)
    if kind is None:
        check_output(run_dir, "run directory", False, overwrite,
                     detail=f" ({what})", instead="a new --run-dir")
    resume = (f"--resume {run_dir} continues it, " if kind == "train" and command == "train"
              and "unfinished" in what else "")
    if not overwrite:
        raise InputError(f"run directory {run_dir}: exists ({what}); {resume}--overwrite "
                         "replaces it, or give another --run-dir")
    return True


def clear_run_dir(run_dir) -> None:
    """Delete what kemo wrote in `run_dir` (checked by `check_new_run_dir`), saying so;
    the lock file is left to its holder."""
    run_dir = Path(run_dir)
    _, what = describe(run_dir)
    log.info(f"--overwrite: replacing {run_dir} ({what})")
    for p in sorted(run_dir.iterdir()):
        if p.name == L.LOCK:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def check_resumable(run_dir) -> None:
    """InputError unless `run_dir` is an unfinished training run kemo wrote (its
    run.json, config.toml, nothing foreign), naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"--resume {run_dir}: not found" if not run_dir.exists() else
                         f"--resume {run_dir}: not a folder")
    if not (run_dir / L.CONFIG).is_file():
        raise InputError(f"--resume {run_dir}: not a kemo run directory (no config.toml)")
    if (run_dir / L.REPORT).is_file():
        raise InputError(f"--resume {run_dir}: this run already finished (report.json "
                         f"exists); train it again with --config {run_dir / L.CONFIG} "
                         f"--run-dir {run_dir} --overwrite, or give another --run-dir")
    m = read_manifest(run_dir)
    legacy = m is None and (run_dir / L.CHECKPOINTS / "LATEST").is_file() \
        and not foreign_entries(run_dir)  # a run from before run.json, with a checkpoint
    if legacy:
        return
    kind, what = describe(run_dir)
    if kind != "train":
        what = "an ensemble, which is built, not trained" if kind == "ensemble" else what
        raise InputError(f"--resume {run_dir}: not a run kemo's training wrote ({what}); "
                         "--resume continues only those (start a new run with --run-dir)")
