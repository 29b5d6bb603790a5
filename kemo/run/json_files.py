"""Reading back the JSON files kemo writes, validated: one `InputError` line per fault.

Every reader of run state (thresholds, label names, history, checkpoint state, export
metadata) parses through `read_json` and checks its fields with `field`,
`label_names` and `numbers`, so a truncated, hand-edited or foreign file stops with
one line naming the file and the field, never a traceback or a silent default.

Example:
    d = read_json(run_dir / "thresholds.json")
    names = label_names(field(d, "label_names", path, list), path, "label_names")
    ts = numbers(field(d, "thresholds", path, list), path, "thresholds", len(names), 0, 1)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kemo.errors import InputError

_KINDS = {dict: "a JSON object", list: "a JSON array", str: "a string", int: "an integer",
          float: "a number", bool: "true or false"}


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _KINDS.get(type(value), type(value).__name__)


def _short(value, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def where(path, name) -> str:
    """`"<path>, field '<name>'"`: how every message names its culprit. `name` is a key
    or a tuple of nested keys (shown joined by dots)."""
    return f"{path}, field '{name if isinstance(name, str) else '.'.join(map(str, name))}'"


def read_json(path, kind: type = dict):
    """The parsed JSON of `path`, which must be a `kind` (dict or list)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a JSON file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        what = "empty file" if not text.strip() else \
            f"{e.msg} at line {e.lineno} column {e.colno}"
        raise InputError(f"{path}: not valid JSON ({what})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as e:  # Python's int(): a number of more than 4300 digits
        raise InputError(f"{path}: not valid JSON ({str(e).split(':')[0]})") from None
    if not isinstance(value, kind):
        raise InputError(f"{path}: expected {_KINDS[kind]}, got {_kind(value)}")
    return value


def field(d: dict, name, path, kind, optional: bool = False, default=None):
    """`d[name]` (`name`: a key, or a tuple of keys into nested objects), which must be
    of type `kind` (a type or tuple of types); missing: an error unless `optional`."""
    keys = (name,) if isinstance(name, str) else tuple(name)
    value = d
    for i, k in enumerate(keys):
        if not isinstance(value, dict):
            raise InputError(f"{where(path, keys[:i])}: expected a JSON object, got "
                             f"{_kind(value)}")
        if k not in value:
            if optional:
                return default
            raise InputError(f"{where(path, keys[:i + 1])}: missing")
        value = value[k]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        kinds += (int,)  # JSON writes 1.0 as 1
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(dict.fromkeys(_KINDS.get(k, k.__name__) for k in kinds))
        raise InputError(f"{where(path, keys)}: expected {expected}, got {_kind(value)} "
                         f"{_short(value)}")
    return value


def numbers(values, path, name: str, n: int | None = None, lo: float | None = None,
            hi: float | None = None, integer: bool = False) -> list:
    """`values` checked as a list of `n` finite numbers within [lo, hi]."""
    if not isinstance(values, list):
        raise InputError(f"{where(path, name)}: expected a JSON array, got {_kind(values)}")
    if n is not None and len(values) != n:
        raise InputError(f"{where(path, name)}: {len(values)} values, expected {n}")
    out = []
    for i, v in enumerate(values):
        bad = isinstance(v, bool) or not isinstance(v, (int, float))
        if integer and isinstance(v, float):
            bad = True
        if bad:
            raise InputError(f"{where(path, name)}[{i}]: expected "
                             f"{'an integer' if integer else 'a number'}, got {_kind(v)} "
                             f"{_short(v)}")
        if (isinstance(v, float) and not math.isfinite(v)) or (lo is not None and v < lo) \
                or (hi is not None and v > hi):  # (math.isfinite overflows on huge ints)
            span = (f" within [{lo}, {hi}]" if hi is not None else f" >= {lo}") \
                if lo is not None else ""
            raise InputError(f"{where(path, name)}[{i}]: {_short(v)} is not a finite "
                             f"number{span}")
        out.append(v)
    return out


def number(d: dict, name, path, lo=None, hi=None, integer: bool = False,
           optional: bool = False, default=None):
    """One finite number field of `d` (see `field`) within [lo, hi]."""
    missing = object()
    value = field(d, name, path, int if integer else float, optional, missing)
    if value is missing:
        return default
    try:
        numbers([value], path, name, None, lo, hi, integer)
    except InputError as e:
        raise InputError(str(e).replace("[0]:", ":", 1)) from None
    return value


def label_names(values, path, name: str, expected=None, source: str = "") -> list[str]:
    """Label names as kemo writes them: distinct non-blank names (the run's dataset's, in
    its order); equal to `expected` (the run's own labels, in its order, read from `source`) when
    given."""
    if not isinstance(values, list):
        raise InputError(f"{where(path, name)}: expected a JSON array, got {_kind(values)}")
    if not values:
        raise InputError(f"{where(path, name)}: empty (expected label names)")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise InputError(f"{where(path, name)}[{i}]: expected a label name, got "
                             f"{_kind(v)} {_short(v)}")
        if not v.strip() or v != v.strip():
            raise InputError(f"{where(path, name)}[{i}]: expected a label name, got "
                             f"{_short(v)}")
    dup = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if dup is not None:
        raise InputError(f"{where(path, name)}: label {dup!r} appears twice")
    if expected is not None:
        expected = list(expected)
        missing = [v for v in expected if v not in values]
        extra = [v for v in values if v not in expected]
        run = f"the run's labels{' in ' + str(source) if source else ''} are " \
              f"{', '.join(expected)}"
        if missing and extra:  # a name in place of another: not one of the run's
            i = values.index(extra[0])
            raise InputError(f"{where(path, name)}[{i}]: unknown label {extra[0]!r}, missing "
                             f"label {missing[0]!r} ({run})")
        if missing:
            raise InputError(f"{where(path, name)}: missing label "
                             f"{', '.join(map(repr, missing))} ({run})")
        if extra:
            raise InputError(f"{where(path, name)}: unexpected label "
                             f"{', '.join(map(repr, extra))} ({run})")
        if values != expected:
            raise InputError(f"{where(path, name)}: labels in the order {', '.join(values)}; "
                             f"{run.replace('labels', 'order', 1).replace(' are ', ' is ')}")
    else:
        from kemo.data.brighter import label_order

        if values != label_order(values):
            raise InputError(f"{where(path, name)}: labels in the order {', '.join(values)}; "
                             f"kemo writes them in the order {', '.join(label_order(values))}")
    return list(values)


def read_history(path) -> list[dict]:
    """`history.json`: one object per epoch, `epoch` 1, 2, ... and finite metrics."""
    epochs = read_json(path, list)
    for i, e in enumerate(epochs):
        if not isinstance(e, dict):
            raise InputError(f"{path}, entry {i}: expected a JSON object, got {_kind(e)}")
        if field(e, "epoch", f"{path}, entry {i}", int) != i + 1:
            raise InputError(f"{path}, entry {i}, field 'epoch': {e['epoch']}, expected {i + 1}")
        for k, v in e.items():  # a diverged run logs NaN: allowed
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    (isinstance(v, int) and abs(v) > 1e308):  # beyond float: not a metric
                raise InputError(f"{path}, entry {i}, field '{k}': expected a number, got "
                                 f"{_kind(v)} {_short(v)}")
    return epochs
