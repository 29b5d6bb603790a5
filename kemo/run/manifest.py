"""`run.json`: what made a run directory, with what, on which machine, and what is in it.

Written by `kemo train` when the run directory is opened (and again, with the end time
and the files, when `report.json` is written), by `kemo train --resume` (one entry per
session in `sessions`), and by `kemo ensemble`. Runs written before the manifest existed
have none: every reader treats it as optional (`read_manifest` returns None).

Fields: `format` ("kemo run manifest"), `version` (1), `kind` ("train" or "ensemble"),
`command` (the command line), `started` / `finished` (UTC, ISO 8601; `finished` null
until the run finished), `sessions` (one {command, started, finished, versions, git
commit, cpu} per process that wrote the run; the first is the one that created it),
`versions` (kemo, keras, jax, ...: installed distributions, read without importing
them), `git_commit` (of kemo's checkout, when it is one), `cpu` (`kemo.machine.cpu_info`),
`files` (name -> one line saying what it is, for each file present).

Example:
    write_manifest(run_dir, "train")          # at start; again with finished=True at the end
    m = read_manifest(run_dir)                # None for a run from before run.json
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from kemo.atomic import write_text
from kemo.checksum import file_sha256
from kemo.errors import InputError
from kemo.machine import cpu_info
from kemo.run import layout as L

FORMAT, VERSION = "kemo run manifest", 1
DATA_DIR = "data_dir"  # the data root a training read: `kemo train --resume` reads it again
_COMMAND: list[str] | None = None  # set by the `kemo` command (kemo.cli.main)
PACKAGES = ("kemo", "keras", "keras-hub", "jax", "jaxlib", "tensorflow", "torch", "numpy")


def now() -> str:
    """UTC now, to the second: `2026-12-03T10:41:35Z`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions() -> dict:
    """Installed versions of `PACKAGES` (absent ones left out), read without importing."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """The commit of kemo's source checkout (with `+dirty` if it has changes), or None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no", "--", "kemo"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def set_command(argv) -> None:
    """Record the command this process runs (`["kemo", "train", ...]`) for `run.json`."""
    global _COMMAND
    _COMMAND = [str(a) for a in argv]


def command_line(argv=None) -> str:
    """The command as typed: `kemo train --config ...` (`set_command`'s, else `sys.argv`)."""
    argv = list(argv if argv is not None else _COMMAND or sys.argv)
    if argv and Path(argv[0]).name in ("kemo", "__main__.py"):
        argv[0] = "kemo"
    return shlex.join(argv)


def files_present(run_dir) -> dict:
    """`layout.FILES` entries for the names present in `run_dir`, and any other file as
    "not written by kemo"; hidden ones (the lock, temporary files) left out."""
    run_dir = Path(run_dir)
    present = {n: d for n, d in L.FILES.items()
               if (run_dir / n).exists() and not n.startswith(".")}
    for p in sorted(run_dir.iterdir()):
        if p.name not in present and not p.name.startswith("."):
            present[p.name] = "not written by kemo train or kemo ensemble"
    return present


def check_model_file(run_dir) -> None:
    """InputError when `model.keras` is not the file this run wrote: run.json records
    its sha256 when the run finishes (a run without it, from before, is not checked)."""
    m = read_manifest(run_dir) or {}
    recorded = m.get("model_sha256")
    path = Path(run_dir) / L.MODEL
    if isinstance(recorded, str) and path.is_file() and file_sha256(path) != recorded:
        raise InputError(f"{path}: not the model this run trained (its sha256 differs from "
                         f"the one {Path(run_dir) / L.MANIFEST} recorded when the run "
                         "finished: copied in from another run, or altered)")


def model_changed(run_dir, manifest: dict | None) -> bool:
    """Whether `model.keras` is not the file run.json recorded (missing, or another
    sha256); cheap when its size and mtime are still those recorded. A run without
    the record (from before it): False."""
    recorded = (manifest or {}).get("model_sha256")
    if not isinstance(recorded, str):
        return False
    path = Path(run_dir) / L.MODEL
    try:
        st = path.stat()
    except OSError:
        return True
    stat = (manifest or {}).get("model_stat")
    if isinstance(stat, dict) and stat == {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
        return False
    return file_sha256(path) != recorded


def recorded_data_dir(run_dir) -> str | None:
    """The data root the training of `run_dir` read (absolute), as its run.json records
    it; None for a run from before the record (`kemo train --resume` then needs
    `--data-dir` as the first session did).

    Example:
        recorded_data_dir("runs/tiny")   # '/work/shared/data/brighter/track_a'
    """
    m = read_manifest(run_dir) or {}
    value = m.get(DATA_DIR)
    return value if isinstance(value, str) and value else None


def read_manifest(run_dir) -> dict | None:
    """The run's `run.json`, or None when it has none (a run from before it) or it is
    not a kemo manifest (unreadable or foreign: the run is still listed and loaded)."""
    path = Path(run_dir) / L.MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == FORMAT else None


def write_manifest(run_dir, kind: str, finished: bool = False, resumed: bool = False,
                   argv=None, data_dir=None) -> dict:
    """Write (or update) `run_dir/run.json`; returns it. A first call starts a session
    (a resumed run adds one); `finished=True` closes it and records the end time. A run
    resumed from before run.json existed gets one with `started` null (unknown).
    `data_dir`: the data root a training reads, recorded once (`recorded_data_dir`)."""
    run_dir = Path(run_dir)
    m = read_manifest(run_dir) or {"format": FORMAT, "version": VERSION, "kind": kind,
                                   "command": command_line(argv), "started": None,
                                   "finished": None, "sessions": []}
    if data_dir is not None and not m.get(DATA_DIR):
        m[DATA_DIR] = str(Path(data_dir).resolve())
    sessions = m.setdefault("sessions", [])
    if not finished or not sessions or sessions[-1].get("finished"):
        sessions.append({"command": command_line(argv), "started": now(), "finished": None,
                         "versions": versions(), "git_commit": git_commit(),
                         "cpu": cpu_info()})
        if m.get("started") is None and len(sessions) == 1 and not resumed:
            m["started"] = sessions[0]["started"]
    if finished:
        sessions[-1]["finished"] = m["finished"] = now()
        if (run_dir / L.MODEL).is_file():  # binds the model file to this run
            m["model_sha256"] = file_sha256(run_dir / L.MODEL)
            st = (run_dir / L.MODEL).stat()  # `kemo runs` hashes again only if these differ
            m["model_stat"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    last = sessions[-1]
    m.update(versions=last["versions"], git_commit=last["git_commit"], cpu=last["cpu"])
    m["files"] = files_present(run_dir) | {L.MANIFEST: L.FILES[L.MANIFEST]}
    write_text(run_dir / L.MANIFEST, json.dumps(m, indent=1))
    return m
