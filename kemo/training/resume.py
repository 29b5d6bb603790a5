"""Resuming: the run's own files read back (`label_distribution.json`, `history.json`,
`history.csv`) checked against the data and the checkpoint before training continues.

Example:
    state = load_checkpoint(run_dir, model, cfg.train.epochs, early_stopping=True)
    check_resumable_history(run_dir, state, label_names, "val_macro_f1")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.json_files import label_names as check_labels, read_history
from kemo.prediction.trained_run import read_label_distribution


def check_resumable_history(run_dir: Path, state: dict | None, label_names,
                            monitor: str = "val_macro_f1") -> None:
    """On resume: `label_distribution.json` and `history.json` (read back by the run)
    are valid and match the data and the checkpoint (`state`, or None: none yet)."""
    path = run_dir / L.LABEL_DISTRIBUTION
    if path.exists():
        check_labels(read_label_distribution(path)["labels"], path, "labels", label_names)
    if (run_dir / L.HISTORY_JSON).exists():
        _check_history(run_dir, state, monitor)
    if (run_dir / L.HISTORY_CSV).exists():  # CSVLogger appends to it
        try:
            header = (run_dir / L.HISTORY_CSV).read_bytes().decode("utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{run_dir / L.HISTORY_CSV}: cannot read ({e})") from None
        if header and not header.startswith("epoch,"):
            raise InputError(f"{run_dir / L.HISTORY_CSV}, header: expected 'epoch,...', got "
                             f"{header[:40]!r}")


def _check_history(run_dir: Path, state: dict | None, monitor: str) -> None:
    """`history.json` holds every epoch the checkpoint is after, and logs early
    stopping's best value for its best epoch."""
    epochs = read_history(run_dir / L.HISTORY_JSON)
    done = state["epoch"] if state else 0
    if len(epochs) < done:
        raise InputError(f"{run_dir / L.HISTORY_JSON}: {len(epochs)} epochs, but the "
                         f"checkpoint is after epoch {done}")
    es = (state or {}).get("early_stopping") or {}
    if es.get("best") is None:
        return
    logged = epochs[es["best_epoch"]].get(monitor)  # early stopping's best, logged then
    try:
        with np.errstate(over="ignore"):
            same = np.float32(logged) == np.float32(es["best"])
    except (TypeError, ValueError, OverflowError):
        same = False
    if logged is None or not same:
        state_json = run_dir / L.CHECKPOINTS / state["checkpoint"] / "state.json"
        raise InputError(
            f"{state_json}, field 'early_stopping.best': {es['best']}, but "
            f"{run_dir / L.HISTORY_JSON} logs {monitor} {logged} for epoch "
            f"{es['best_epoch'] + 1} (one of the two files is damaged)")
