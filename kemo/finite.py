"""Non-finite numbers never become an answer: a model's weights and its outputs checked.

A NaN probability compares false with every threshold, so it would silently decide
"no emotion"; kemo refuses it instead, in one `InputError` line naming the model file
and the first bad row (`check_probs`), or the first bad weight (`check_weights`).

Example:
    check_weights(model, run_dir / "model.keras")
    check_probs(probs, run_dir / "model.keras", rows=["eng.csv, row 1 (id 'a')", ...])
"""

from __future__ import annotations

import numpy as np

from kemo.errors import InputError


def first_bad_row(values) -> int | None:
    """Index of the first row of a 2-D array holding NaN or inf, else None."""
    values = np.asarray(values)
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def row_name(rows, i: int) -> str:
    """How row `i` is named in a message: `rows[i]` when given, else `text <i+1>`."""
    return rows[i] if rows is not None and i < len(rows) else f"text {i + 1}"


def check_probs(probs, model_file, rows=None, label_names=None) -> np.ndarray:
    """`probs` unchanged if every value is finite; else InputError naming `model_file`
    and the first bad row (`rows`: one description per row)."""
    i = first_bad_row(probs)
    if i is None:
        return probs
    row = np.asarray(probs)[i]
    j = int(np.flatnonzero(~np.isfinite(row))[0])
    label = f" ({label_names[j]})" if label_names is not None and j < len(label_names) else ""
    raise InputError(
        f"{model_file}: non-finite probability ({row[j]}{label}) for {row_name(rows, i)}: "
        "the model file is damaged or does not fit these inputs; nothing was decided")


def check_weights(model, model_file) -> None:
    """InputError naming the first weight of `model` that holds NaN or inf."""
    for w in model.weights:
        value = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise InputError(f"{model_file}: weight {getattr(w, 'path', w.name)} holds "
                             "non-finite values (NaN or inf): the model file is damaged")
