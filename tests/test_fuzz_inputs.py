"""Fuzz-style test of every file kind kemo reads (issue 11): seeded random corruptions.

File kinds, one test each: the Track A train and dev CSVs (`train`), a Track A test
file and a plain id,text file (`predict`), gold and prediction CSVs and the
submission zip (`evaluate`), a `--config` TOML file (`train`), a run's `config.toml`,
`thresholds.json`, `label_distribution.json`, `report.json` and `model.keras`
(`predict`, `explain`, `export`, `report`), the checkpoint's `LATEST`, `state.json`,
`.npz` arrays and `history.json` (`train --resume`), and an export's `export.json` and
`.kemo-export` marker (`export --out`).

Operators (one to three per case, drawn from a seeded RNG): truncation at a random
offset; byte flips, insertions and deletions (offsets biased towards the first and last
256 bytes, where headers and zip directories are); duplicated and removed lines; and per
format: an extra or missing comma or a stray quote in a random CSV row; a deleted,
renamed or retyped JSON key, NaN/inf/out-of-range numbers, shortened or reordered JSON
arrays, integers of 21, 401 and 5001 digits; mangled TOML keys, values and section
headers; dropped, renamed, retyped, reshaped or NaN checkpoint arrays, a removed array
file; dropped, duplicated, renamed, truncated or re-compressed zip members.

The contract, per case, is one of:
(a) refused: exit 2, exactly one `error:` line (no line break inside it, naming the
    damaged file, or the config key), no traceback, and the directory tree (paths,
    sizes, mtimes, sha1) unchanged; or
(b) accepted and correct: an independent oracle (Python's csv, json, tomllib, zipfile
    and numpy plus the documented rules of each format) finds the damaged file valid,
    and what kemo read or computed equals the oracle's result: the same ids, texts and
    labels; the same scores; the same thresholds, decisions, label names and config
    values (also when the oracle's values are written cleanly and read again);
    bit-identical checkpoint arrays, model weights and model outputs.
Kemo accepting a file that the oracle finds invalid fails, as does a traceback.

Speed: every case runs in-process. `evaluate` and every refusal (which fails before
any heavy work) go through `kemo.cli.main`. Where an accepted input would start
minutes of work (training, a SavedModel export, a resume) or a model load, kemo's own
reader (the function the command calls first: `load_split`, `read_input_file`,
`load_config`, `read_run_state`, `load_run`, `read_checkpoint`, `check_out`) decides,
and the CLI runs only for the refusals: its error line must be the reader's. The
checkpoint refusals run through `train --resume` for the first few cases of each kind
(seconds each: data, vocabulary and model are built first); the others check the
reader's error. One accepted case per predict kind, and the first accepted
`thresholds.json`, also run `predict` end to end.

`KEMO_FUZZ_CASES` (default 24) sets the cases per kind; the seed is fixed (1111;
`KEMO_FUZZ_SEED` draws other cases). The last test prints how many cases each kind ran
and how they ended (refused, accepted, failed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import re
import shutil
import tomllib
import traceback
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, snapshot
from kemo.cli import main
from kemo.data.brighter import LABELS, LANGUAGES
from kemo.errors import InputError

SEED = int(os.environ.get("KEMO_FUZZ_SEED", "1111"))
N = int(os.environ.get("KEMO_FUZZ_CASES", "24"))  # cases per file kind
RESUME_CLI_CASES = 2  # refused checkpoint cases per kind also run through `train --resume`
TINY = ROOT / "configs" / "tiny.toml"
STATS: dict[str, Counter] = {}


class CaseFailure(Exception):
    """The case broke the contract."""


class Invalid(Exception):
    """The oracle finds the file invalid (kemo must refuse it)."""


def need(cond, what: str):
    if not cond:
        raise Invalid(what)


# ------------------------------------------------------------------ corruptions
NOISE = b',"\n\r{}[]:=.-+eE0123456789 \t\\#\x00\xff'


def _offset(rng, n: int) -> int:
    """A position in [0, n): uniform, or near the start or the end (headers, zip
    directories)."""
    if n <= 512 or rng.random() < 0.5:
        return rng.randrange(n)
    return rng.randrange(256) if rng.random() < 0.5 else n - 1 - rng.randrange(256)


def truncate(d, rng):
    at = rng.randrange(len(d)) if d else 0
    return d[:at], f"truncate at {at}"


def flip(d, rng):
    if not d:
        return insert(d, rng)
    b = bytearray(d)
    at = _offset(rng, len(b))
    x = 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    b[at] ^= x
    return bytes(b), f"flip byte {at} ^ {x:#04x}"


def insert(d, rng):
    at = _offset(rng, len(d) + 1)
    chunk = bytes(rng.choice(NOISE) if rng.random() < 0.7 else rng.randrange(256)
                  for _ in range(rng.randint(1, 4)))
    return d[:at] + chunk + d[at:], f"insert {chunk!r} at {at}"


def delete(d, rng):
    if not d:
        return insert(d, rng)
    at, k = _offset(rng, len(d)), rng.randint(1, 4)
    return d[:at] + d[at + k:], f"delete {d[at:at + k]!r} at {at}"


def _lines(d):
    return d.splitlines(keepends=True)


def dup_line(d, rng):
    lines = _lines(d)
    if len(lines) < 2:
        return flip(d, rng)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines) + 1)
    line = lines[i] if lines[i].endswith((b"\n", b"\r")) else lines[i] + b"\n"
    lines.insert(j, line)
    return b"".join(lines), f"copy line {i + 1} to {j + 1}"


def drop_line(d, rng):
    lines = _lines(d)
    if len(lines) < 2:
        return flip(d, rng)
    i = rng.randrange(len(lines))
    del lines[i]
    return b"".join(lines), f"remove line {i + 1}"


BYTE_OPS = [truncate, flip, flip, insert, delete]
LINE_OPS = [dup_line, drop_line]


def _in_line(d, rng, want=None):
    """(lines, index, start, end) of a random line (a data line if any; one holding
    `want` if given), end excluding the line break."""
    lines = _lines(d)
    pool = [i for i in range(1 if len(lines) > 1 else 0, len(lines))
            if want is None or want in lines[i]]
    if not pool:
        return None
    i = rng.choice(pool)
    body = lines[i].rstrip(b"\r\n")
    return lines, i, body


def extra_comma(d, rng):
    got = _in_line(d, rng)
    if not got:
        return insert(d, rng)
    lines, i, body = got
    at = rng.randint(0, len(body))
    lines[i] = body[:at] + b"," + lines[i][at:]
    return b"".join(lines), f"extra comma in line {i + 1} at column {at}"


def missing_comma(d, rng):
    got = _in_line(d, rng, b",")
    if not got:
        return delete(d, rng)
    lines, i, body = got
    commas = [k for k, c in enumerate(body) if c == ord(",")]
    at = rng.choice(commas)
    lines[i] = lines[i][:at] + lines[i][at + 1:]
    return b"".join(lines), f"missing comma in line {i + 1} at column {at}"


def stray_quote(d, rng):
    got = _in_line(d, rng)
    if not got:
        return insert(d, rng)
    lines, i, body = got
    at = rng.randint(0, len(body))
    lines[i] = lines[i][:at] + b'"' + lines[i][at:]
    return b"".join(lines), f"quote in line {i + 1} at column {at}"


CSV_OPS = [extra_comma, extra_comma, missing_comma, missing_comma, stray_quote]


def _json_paths(obj, prefix=()):
    if prefix:
        yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for k, v in items:
        yield from _json_paths(v, prefix + (k,))


def _at(obj, path):
    for k in path:
        obj = obj[k]
    return obj


SPECIAL_NUMBERS = [math.nan, math.inf, -math.inf, -1, -1e-9, 1.0000001, 2.0, 1e308, 10**20,
                   -0.0, 0, 1, 0.5, 0.25, 3]


def json_op(d, rng):
    """One structural edit of a JSON document: delete, rename or retype a random key
    (or array item), set a number to NaN/inf/out of range, edit an array."""
    try:
        obj = json.loads(d.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return flip(d, rng)
    paths = list(_json_paths(obj))
    if not paths:
        return flip(d, rng)
    path = rng.choice(paths)
    parent, key = _at(obj, path[:-1]), path[-1]
    what = rng.choice(["delete", "rename", "retype", "number", "number", "array"])
    if what == "rename" and isinstance(parent, dict):
        new = rng.choice([key + "_", key.upper(), key[:-1] or "x", " " + key])
        items = [(new if k == key else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    elif what in ("delete", "rename"):
        what = "delete"
        parent.pop(key)
    elif what == "retype":
        v = parent[key]
        parent[key] = rng.choice([json.dumps(v), None, True, False, [v], {"v": v}, 0, ""])
    elif what == "number":
        parent[key] = rng.choice(SPECIAL_NUMBERS)
    else:
        lists = [p for p in paths if isinstance(_at(obj, p), list)]
        if not lists:
            parent[key] = rng.choice(SPECIAL_NUMBERS)
        else:
            path = rng.choice(lists)
            arr = _at(obj, path)
            how = rng.choice(["pop", "dup", "reverse", "label", "half"])
            if how == "pop" and arr:
                arr.pop(rng.randrange(len(arr)))
            elif how == "dup" and arr:
                arr.insert(rng.randrange(len(arr) + 1), rng.choice(arr))
            elif how == "label":
                arr.insert(rng.randrange(len(arr) + 1), rng.choice(LABELS))
            elif how == "half":
                del arr[len(arr) // 2:]
            else:
                arr.reverse()
            what = f"array {how}"
    indent = rng.choice([None, 1, 2, "\t"])
    out = json.dumps(obj, indent=indent, ensure_ascii=rng.random() < 0.5).encode()
    return out, f"json {what} at {'/'.join(map(str, path))}"


def huge_number(d, rng):
    """A run of digits replaced by a 21-, 401- or 5001-digit integer (beyond int64, beyond
    float, beyond Python's 4300-digit int() limit)."""
    runs = [m.span() for m in re.finditer(rb"\d+", d)]
    if not runs:
        return insert(d, rng)
    a, b = rng.choice(runs)
    new = b"1" + b"0" * rng.choice([20, 400, 5000])
    return d[:a] + new + d[b:], f"digits at {a} -> 10**{len(new) - 1}"


JSON_OPS = [json_op] * 6 + [huge_number]
TOML_VALUES = ["nan", "inf", "-inf", "+inf", "-1", "0", "1e400", "2.0", "1", "0.5", '"x"', '""',
               "[]", "[1, 2]", "true", "{}", "4294967296", "18446744073709551616", "-0.0",
               "1e-320", '"inverse_frequency"', '["eng", "eng"]', '"mean"', "[0]", '"a/b"',
               "2147483648", "1" + "0" * 400]
KEY_VALUE = re.compile(rb"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)([^\r\n]*)(\r?\n?)$")


def toml_op(d, rng):
    """One edit of a TOML key/value line or section header."""
    lines = _lines(d)
    kv = [i for i, line in enumerate(lines) if KEY_VALUE.match(line)]
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith(b"[")]
    what = rng.choice(["value", "value", "value", "key", "header", "move"])
    if what == "header" and headers:
        i = rng.choice(headers)
        name = lines[i].strip()[1:-1]
        new = rng.choice([name[:-1], name + b"x", b"[" + name + b"]", name + b".x", b"name"])
        lines[i] = b"[" + new + b"]\n"
        return b"".join(lines), f"toml header line {i + 1} -> [{new.decode(errors='replace')}]"
    if not kv:
        return flip(d, rng)
    i = rng.choice(kv)
    indent, key, eq, value, end = KEY_VALUE.match(lines[i]).groups()
    if what == "key":
        new = rng.choice([key + b"_", key.upper(), key[:-1] or b"x", b"x" + key])
        lines[i] = indent + new + eq + value + end
        return b"".join(lines), f"toml key line {i + 1} -> {new.decode(errors='replace')}"
    if what == "move":
        j = rng.randrange(len(lines) + 1)
        line = lines.pop(i)
        lines.insert(j, line if line.endswith(b"\n") else line + b"\n")
        return b"".join(lines), f"toml move line {i + 1} to {j + 1}"
    new = rng.choice(TOML_VALUES).encode()
    lines[i] = indent + key + eq + new + end
    return b"".join(lines), f"toml {key.decode()} = {new.decode()} (line {i + 1})"


TOML_OPS = [toml_op] * 6 + [huge_number]


def npz_op(d, rng):
    """Rewrite a checkpoint's .npz with one array dropped, renamed, retyped, reshaped,
    given a NaN or an extra array."""
    try:
        with np.load(io.BytesIO(d), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:
        return flip(d, rng)
    if not arrays:
        return flip(d, rng)
    k = rng.choice(sorted(arrays))
    a = arrays[k]
    what = rng.choice(["drop", "rename", "dtype", "reshape", "nan", "extra"])
    if what == "drop":
        del arrays[k]
    elif what == "rename":
        arrays[rng.choice(["v99999", "x" + k, k.upper()])] = arrays.pop(k)
    elif what == "dtype":
        arrays[k] = a.astype(rng.choice(["float64", "float16", "int32", "int64", "uint8"]
                                        if a.dtype.kind == "f" else ["float32", "int8", "bool"]))
    elif what == "reshape":
        arrays[k] = rng.choice([a.ravel(), a.ravel()[:-1] if a.size else a, a[None], a.T.copy()])
    elif what == "nan" and a.dtype.kind == "f" and a.size:
        b = a.copy()
        b.flat[rng.randrange(b.size)] = rng.choice([np.nan, np.inf, -np.inf])
        arrays[k] = b
    else:
        what = "extra"
        arrays[f"v{len(arrays):05d}"] = np.zeros(3, "float32")
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue(), f"npz {what} {k}"


def remove_file(d, rng):
    return None, "remove the file"


NPZ_OPS = [npz_op] * 5 + [remove_file]


def zip_op(d, rng, csv_members: bool = False):
    """Re-write a zip with one member dropped, duplicated, renamed, truncated or
    re-compressed, a junk member added, or the members reordered; with `csv_members`
    also a CSV edit inside a member."""
    try:
        with zipfile.ZipFile(io.BytesIO(d)) as z:
            members = [(i.filename, i.compress_type, i.date_time, z.read(i)) for i in z.infolist()]
    except Exception:
        return flip(d, rng)
    if not members:
        return flip(d, rng)
    k = rng.randrange(len(members))
    name, ctype, when, data = members[k]
    what = rng.choice(["drop", "duplicate", "rename", "junk", "recompress", "reorder", "truncate"]
                      + ["csv"] * (3 if csv_members else 0))
    if what == "drop":
        del members[k]
    elif what == "duplicate":
        members.insert(rng.randrange(len(members) + 1), members[k])
    elif what == "rename":
        new = rng.choice([name + "x", name.upper(), "sub/" + name, name.replace("eng", "afr"),
                          name.replace(".csv", "_a.csv"), name.split("/")[-1]])
        members[k] = (new, ctype, when, data)
    elif what == "junk":
        members.insert(rng.randrange(len(members) + 1),
                       (rng.choice(["junk.txt", "track_a/notes.txt", "__MACOSX/x"]), ctype, when,
                        b"junk"))
    elif what == "recompress":
        members = [(n, zipfile.ZIP_STORED if c != zipfile.ZIP_STORED else zipfile.ZIP_DEFLATED,
                    w, b) for n, c, w, b in members]
    elif what == "reorder":
        rng.shuffle(members)
    elif what == "truncate":
        members[k] = (name, ctype, when, data[:rng.randrange(len(data) + 1)])
    else:
        members[k] = (name, ctype, when, rng.choice(CSV_OPS + LINE_OPS)(data, rng)[0])
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as z:
        warnings.simplefilter("ignore")  # a duplicated name
        for n, c, w, b in members:
            info = zipfile.ZipInfo(n, date_time=w)
            info.compress_type = c
            z.writestr(info, b)
    return out.getvalue(), f"zip {what} {name}"


def latest_op(d, rng):
    new = rng.choice([b"epoch-0001", b"epoch-0003", b"../epoch-0002", b"epoch-0002/", b"",
                      b"epoch-2", b" epoch-0002 \n", b"epoch-0002\x00", b"/tmp", b"epoch-00002",
                      b"EPOCH-0002", b"epoch-0002\nepoch-0001"])
    return new, f"LATEST = {new!r}"


def corrupt(original: bytes, ops, rng) -> tuple[bytes, str]:
    """`original` with 1 to 3 operators applied (a changed file: redrawn if unchanged)."""
    for _ in range(10):
        data, done = original, []
        for _ in range(rng.choices([1, 2, 3], [6, 3, 1])[0]):
            data, what = rng.choice(ops)(data, rng)
            done.append(what)
            if data is None:  # removed
                break
        if data != original:
            break
    return data, "; ".join(done)


# ---------------------------------------------------------------------- harness

def cli(argv, capsys):
    """`kemo.cli.main(argv)` in-process: (exit code or the traceback text, stdout, stderr)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    except Exception:
        rc = "traceback:\n" + traceback.format_exc(limit=-6)
    out, err = capsys.readouterr()
    return rc, out, err


def check_message(msg: str, names) -> None:
    if "\n" in msg or "\r" in msg:
        raise CaseFailure(f"error message spans lines: {msg!r}")
    if names and not any(n in msg for n in names):
        raise CaseFailure(f"error message names none of {names}: {msg!r}")


def _unnumbered(msg: str) -> str:
    """`msg` without Keras' per-instance name suffixes (adam_w_6/... -> adam_w/...)."""
    return re.sub(r"(\w)_\d+/", r"\1/", msg)


def expect_refused(root: Path, argv, msg, names, capsys) -> str:
    """Run the CLI on a damaged input: exit 2, one `error:` line (the reader's `msg` when
    given), no traceback, nothing changed under `root`."""
    before = snapshot(root)
    rc, out, err = cli(argv, capsys)
    after = snapshot(root)
    if isinstance(rc, str):
        raise CaseFailure(f"{argv[0]}: {rc}")
    if rc != 2:
        raise CaseFailure(f"{argv[0]}: exit {rc}, expected 2 (reader said {msg!r}); "
                          f"stderr {err[-500:]!r}")
    if "Traceback" in out + err:
        raise CaseFailure(f"{argv[0]}: traceback printed: {err[-1000:]}")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if len(errors) != 1:
        raise CaseFailure(f"{argv[0]}: {len(errors)} error lines: {err[-1000:]!r}")
    if msg is not None and _unnumbered(errors[0]) != _unnumbered(f"error: {msg}"):
        raise CaseFailure(f"{argv[0]}: error line {errors[0]!r} is not the reader's {msg!r}")
    check_message(errors[0], names)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        raise CaseFailure(f"{argv[0]}: files written or changed on refusal: {changed[:5]}")
    return "refused"


def fuzz(kind: str, targets, ops, check, reset=None, n: int = N):
    """Run `n` seeded cases: damage one of `targets` (a Path, or a list to draw from),
    `check(i, path, data, how)` returns "refused" or "accepted" or raises CaseFailure;
    the file is restored after each case (and `reset()` runs after a failure)."""
    targets = targets if isinstance(targets, list) else [targets]
    originals = {p: p.read_bytes() for p in targets}
    stats = STATS[kind] = Counter()
    failures = []
    for i in range(n):
        rng = random.Random(f"{SEED}:{kind}:{i}")
        path = rng.choice(targets)
        data, how = corrupt(originals[path], ops, rng)
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)
        try:
            outcome = check(i, path, data, how)
        except CaseFailure as e:
            failures.append(f"[{kind} #{i}] {path.name}: {how}: {e}")
        except Exception:
            failures.append(f"[{kind} #{i}] {path.name}: {how}: unexpected "
                            f"{traceback.format_exc(limit=-4)}")
        finally:
            for p, b in originals.items():
                p.write_bytes(b)
        if len(failures) > stats["failed"]:
            outcome = "failed"
            if reset:
                reset()
        stats[outcome] += 1
    assert not failures, f"{len(failures)} of {n} {kind} cases broke the contract:\n" + \
        "\n".join(failures[:12])


# ---------------------------------------------------------------------- oracles

def oracle_rows(data: bytes):
    """Header and data rows, parsed independently with Python's csv module."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("not UTF-8") from None
    text = text[1:] if text.startswith("\ufeff") else text
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True)
                if r and not (len(r) == 1 and not r[0].strip())]
    except csv.Error as e:
        raise Invalid(f"csv: {e}") from None
    need(rows, "no header")
    header, body = rows[0], rows[1:]
    bad = [k for k, r in enumerate(body, 1) if len(r) != len(header)]
    need(not bad, f"row {bad[:1]} has a field count other than the header's")
    return header, body


def _ids(body, j):
    ids = [r[j].strip() for r in body]
    need(all(ids), "blank id")
    need(len(set(ids)) == len(ids), "duplicated id")
    return ids


def oracle_track_a(data: bytes, labelled: bool) -> dict:
    """A Track A file: id, text and label columns among LABELS, 0/1 labels (blank
    allowed when not `labelled`), unique non-blank ids, non-blank texts if labelled."""
    header, body = oracle_rows(data)
    need(len(set(header)) == len(header), "duplicated column")
    need("id" in header and "text" in header, "no id or text column")
    labels = [c for c in header if c not in ("id", "text")]
    need(labels and all(c in LABELS for c in labels), f"label columns {labels}")
    need(body, "no data rows")
    col = {c: j for j, c in enumerate(header)}
    texts = [r[col["text"]] for r in body]
    need(not labelled or all(t.strip() for t in texts), "blank text")
    cells = {c: [r[col[c]].strip() for r in body] for c in labels}
    allowed = {"0", "1"} if labelled else {"0", "1", ""}
    need(all(v in allowed for c in labels for v in cells[c]), "a label other than 0/1")
    return {"ids": _ids(body, col["id"]), "texts": texts, "labels": labels, "cells": cells}


def oracle_plain(data: bytes) -> dict:
    header, body = oracle_rows(data)
    need("id" in header and "text" in header, "no id or text column")
    need(body, "no data rows")
    return {"ids": _ids(body, header.index("id")),
            "texts": [r[header.index("text")] for r in body]}


def oracle_input(data: bytes) -> dict:
    """A predict input named eng.csv / texts.csv: Track A if it has a label column."""
    header, _ = oracle_rows(data)
    if any(c in LABELS for c in header):
        return {"track_a": True, **oracle_track_a(data, labelled=False)}
    return {"track_a": False, "labels": [], **oracle_plain(data)}


def oracle_table(data: bytes, role: str):
    header, body = oracle_rows(data)
    need(header[0].strip().lower() == "id", "first column is not id")
    keep = [j for j in range(1, len(header))
            if not (role == "gold" and header[j].lower() == "text")]
    need(keep and body, "no label columns or no rows")
    cells = [[r[j].strip() for j in keep] for r in body]
    need(all(v in ("0", "1") for row in cells for v in row), "a cell other than 0/1")
    return _ids(body, 0), [header[j].lower() for j in keep], np.array(cells, int)


def oracle_scores(pred: bytes, gold: bytes) -> dict:
    """The official scorer's numbers, from an independent parse of both files."""
    from sklearn.metrics import f1_score

    gids, glabels, y_true = oracle_table(gold, "gold")
    pids, plabels, values = oracle_table(pred, "prediction")
    need(plabels == glabels, "prediction header differs from the gold header")
    need(sorted(pids) == sorted(gids), "prediction ids differ from gold ids")
    row = {i: r for r, i in enumerate(pids)}
    y_pred = values[[row[i] for i in gids]]
    return {"rows": len(gids), "labels": glabels,
            "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
            "micro_f1": f1_score(y_true, y_pred, average="micro", zero_division=0),
            "f1": list(f1_score(y_true, y_pred, average=None, zero_division=0))}


PRED_NAME = re.compile(r"^pred_([a-z]+)(?:_a)?\.csv$")


def oracle_zip(data: bytes) -> bytes:
    """The one pred_eng.csv member of a submission zip (CRCs checked by zipfile)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
    except Exception as e:
        raise Invalid(f"zip: {type(e).__name__}: {e}") from None
    preds = [(n, b) for n, b in members if PRED_NAME.match(n.split("/")[-1])]
    need(len(preds) == 1 and PRED_NAME.match(preds[0][0].split("/")[-1]).group(1) == "eng",
         f"prediction members {[n for n, _ in preds]}")
    return preds[0][1]


def oracle_json(data: bytes, kind=dict):
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Invalid(f"json: {e}") from None
    need(isinstance(value, kind), f"not a JSON {kind.__name__}")
    return value


def is_number(v, lo=None, hi=None, integer=False) -> bool:
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
        return False
    finite = not isinstance(v, float) or math.isfinite(v)
    return finite and (lo is None or v >= lo) and (hi is None or v <= hi)


def f32_equal(a, b) -> bool:
    try:
        return bool(np.float32(a) == np.float32(b))
    except (TypeError, ValueError, OverflowError):
        return False


def numbers_ok(v, n, lo=None, hi=None) -> bool:
    return isinstance(v, list) and len(v) == n and all(is_number(x, lo, hi) for x in v)


def oracle_thresholds(d: dict, labels):
    need(d.get("label_names") == labels, f"label_names {d.get('label_names')}")
    need(numbers_ok(d.get("thresholds"), len(labels), 0, 1), "thresholds")
    need(d.get("val_f1", []) == [] or numbers_ok(d["val_f1"], len(labels), 0, 1), "val_f1")


def oracle_distribution(d: dict, labels):
    need(d.get("labels") == labels, f"labels {d.get('labels')}")
    for k in ("before", "after"):
        need(numbers_ok(d.get(k), len(labels), 0, 1), k)
    need("sampling_strength" not in d or is_number(d["sampling_strength"], 0),
         "sampling_strength")


def _classification_report(rep, labels, where):
    need(isinstance(rep, dict) and is_number(rep.get("n"), 0, integer=True), f"{where}.n")
    per = rep.get("per_label")
    need(isinstance(per, dict) and set(per) <= set(labels), f"{where}.per_label")
    for name, scores in per.items():
        need(isinstance(scores, dict), f"{where}.per_label.{name}")
        need(all(is_number(scores.get(k), 0, 1) for k in ("precision", "recall", "f1")),
             f"{where}.per_label.{name}")
        need(is_number(scores.get("support"), 0, integer=True), f"{where}.{name}.support")
    for avg in ("macro", "micro", "weighted", "samples"):
        if avg in rep:
            need(isinstance(rep[avg], dict) and all(
                is_number(rep[avg].get(k), 0, 1) for k in ("precision", "recall", "f1")),
                f"{where}.{avg}")


def oracle_report(d: dict, labels):
    for split in ("validation", "dev"):
        if split == "dev" and split not in d:
            continue
        need(isinstance(d.get(split), dict), split)
        for key in ("threshold_0.5", "tuned_thresholds"):
            need(isinstance(d[split].get(key), dict), f"{split}.{key}")
            _classification_report(d[split][key].get("overall"), labels, f"{split}.{key}")
            langs = d[split][key].get("per_language", {})
            need(isinstance(langs, dict), "per_language")
            for lang, rep in langs.items():
                _classification_report(rep, labels, f"{split}.{key}.{lang}")
    meta = d.get("meta", {})
    need(isinstance(meta, dict), "meta")
    need("thresholds" not in meta or numbers_ok(meta["thresholds"], len(labels), 0, 1),
         "meta.thresholds")


# What config.py promises for every key (README: finite numbers, ranges, choices).
CHOICES = {"model.pooling": {"cls", "mean"}, "loss.name": {"bce", "focal"},
           "train.schedule": {"cosine", "constant"},
           "train.dtype_policy": {"float32", "mixed_bfloat16", "bfloat16"},
           "train.distribution": {"none", "data_parallel"},
           "data.validation": {"train", "dev"}, "data.layout": {"track_a", "table"},
           "data.label_kind": {"binary", "intensity"}, "model.head": {"regression", "ordinal"},
           "data.format": {"", "csv", "tsv", "jsonl", "parquet"},
           "data.label_encoding": {"columns", "names", "indices"},
           "data.ungrouped_labels": {"keep", "drop"}}
INT_MAX = 2**31 - 1
SEED_MAX = 2**32 - 1
# key -> (low, low included, high, high included)
RANGES = {"data.val_fraction": (0, True, 1, False), "model.dropout": (0, True, 1, False),
          "train.warmup_fraction": (0, True, 1, True), "data.sampling_strength": (0, True, 10, True),
          "train.seed": (0, True, SEED_MAX, True), "data.split_seed": (-1, True, SEED_MAX, True),
          "model.sequence_length": (3, True, INT_MAX, True),
          "data.language_temperature": (0, False, 1000, True),
          "data.dataset_temperature": (0, False, 1000, True),
          "data.max_intensity": (1, True, 100, True)}
POSITIVE = {"model.num_layers", "model.num_heads", "model.hidden_dim", "model.intermediate_dim",
            "model.vocabulary_size", "train.epochs", "train.batch_size", "train.learning_rate",
            "data.length_buckets"}


def _number_ok(key, v) -> bool:
    if isinstance(v, float) and not math.isfinite(v):
        return False
    if key in RANGES:
        lo, lo_in, hi, hi_in = RANGES[key]
        return (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)
    ok = v > 0 if key in POSITIVE else v >= 0
    return ok and (not isinstance(v, int) or v <= INT_MAX)


def _toml_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("not UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # read in text mode


def oracle_config(data: bytes) -> dict:
    """The TOML values, checked against the config schema and the documented ranges."""
    from kemo.config import Config

    try:
        raw = tomllib.loads(_toml_text(data))
    except ValueError as e:  # TOMLDecodeError, or beyond int()'s 4300 digits
        raise Invalid(f"toml: {e}") from None
    base = Config()
    sections = {f.name: {g.name for g in dataclasses.fields(getattr(base, f.name))}
                for f in dataclasses.fields(Config) if f.name != "name"}
    list_of_str = {f"{f.name}.{g.name}" for f in dataclasses.fields(Config) if f.name != "name"
                   for g in dataclasses.fields(getattr(base, f.name)) if str(g.type) == "list[str]"}
    out = {}
    for sec, body in raw.items():
        if sec == "name":
            need(isinstance(body, str) and "/" not in body and "\x00" not in body, "name")
            out["name"] = body
            continue
        need(sec in sections and isinstance(body, dict), f"section {sec}")
        for key, v in body.items():
            full = f"{sec}.{key}"
            need(key in sections[sec], f"unknown key {full}")
            default = getattr(getattr(base, sec), key)
            if isinstance(v, str):
                need("\x00" not in v, f"{full}: NUL")
            if full == "loss.alpha":
                need(v in ("inverse_frequency", "none") or (
                    isinstance(v, list) and v and all(is_number(x, 0) for x in v)), full)
            elif isinstance(default, bool):
                need(isinstance(v, bool), full)
            elif isinstance(default, (int, float)):
                need(not isinstance(v, bool) and isinstance(
                    v, int if isinstance(default, int) else (int, float)), f"{full}: type")
                need(abs(v) <= 1e308, f"{full}: beyond float range")
                v = float(v) if isinstance(default, float) else v  # TOML 3 is 3.0 there
                need(_number_ok(full, v), f"{full}: range")
            elif isinstance(default, str):
                need(isinstance(v, str), f"{full}: type")
                need(full not in CHOICES or v in CHOICES[full], f"{full}: choice")
            elif full == "data.languages":
                v = [x for x in v.split(",") if x] if isinstance(v, str) else v
                need(isinstance(v, list) and v and all(isinstance(x, str) for x in v)
                     and len(set(v)) == len(v), full)
            elif full in list_of_str:
                v = [x for x in v.split(",") if x] if isinstance(v, str) else v
                need(isinstance(v, list) and all(isinstance(x, str) and "\x00" not in x
                                                 for x in v), full)
                need(full != "data.unlabelled_splits"
                     or set(v) <= {"train", "dev", "test"}, full)
            else:  # list[int]
                need(isinstance(v, list) and all(
                    isinstance(x, int) and not isinstance(x, bool) and _number_ok(full, x)
                    for x in v), full)
            out[full] = v
    _dataset_rules(out)
    return out


def _dataset_rules(values: dict) -> None:
    """The [data] keys that only make sense together (README "Your own data", Track B)."""
    from kemo.config import DataConfig

    d = {**dataclasses.asdict(DataConfig()),
         **{k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("data.")}}
    need(d["label_separator"] != "", "data.label_separator")
    if d["label_kind"] == "intensity":
        need(d["layout"] == "track_a" and not d["extra_datasets"], "data.label_kind")
    if d["layout"] == "table":
        need(bool(d["train_file"]), "data.train_file")
        need(d["header"] or bool(d["columns"]), "data.columns")
        need(d["label_encoding"] != "indices" or bool(d["label_names"] or d["label_names_file"]),
             "data.label_names_file")
        need(not (d["label_names"] and d["label_names_file"]), "data.label_names")
        need(d["validation"] != "dev" or bool(d["dev_file"]), "data.validation")


def check_config_values(cfg, values: dict):
    for full, v in values.items():
        got = cfg.name if full == "name" else getattr(getattr(cfg, full.split(".")[0]),
                                                      full.split(".")[1])
        if got != v or type(got) is not type(v):
            raise CaseFailure(f"config {full}: kemo read {got!r}, the file says {v!r}")


def toml_dump(values: dict) -> str:
    """The oracle's values written cleanly (no comments, one table per section)."""
    sections: dict[str, dict] = {}
    lines = []
    for full, v in values.items():
        if full == "name":
            lines.append(f"name = {json.dumps(v)}")
        else:
            sec, key = full.split(".")
            sections.setdefault(sec, {})[key] = v
    for sec, body in sections.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def accepted_invalid(e: Invalid):
    return CaseFailure(f"kemo accepted it, but it is invalid: {e}")


# ---------------------------------------------------------------------- fixtures

def sample_csv(path: Path, n: int, transform=None) -> bytes:
    """The first `n` records of a real CSV, written back by the csv module."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))[: n + 1]
    if transform:
        rows = [transform(r) for r in rows]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def reference(tiny_run):
    """The tiny run as read intact: state, model outputs, checkpoint arrays."""
    from kemo.training.checkpoint import read_checkpoint
    from kemo.data.pipeline import tokenize
    from kemo.prediction.trained_run import load_run, read_run_state
    from kemo.training.optimizer import make_optimizer

    run = load_run(tiny_run)
    state = read_run_state(tiny_run)
    tokens = tokenize(["I am so happy", "this is scary and sad", "what?!"], run.preprocessor)
    outputs = np.asarray(run.model(tokens, training=False))
    weights = [np.asarray(w) for w in run.model.get_weights()]
    # A second model to read checkpoints into, compiled as training compiles it.
    ck_run = load_run(tiny_run)
    ck_run.model.compile(optimizer=make_optimizer(ck_run.config, 100))
    es = ck_run.config.train.early_stopping_patience > 0
    ckpt = read_checkpoint(tiny_run, ck_run.model, ck_run.config.train.epochs, es)
    history = json.loads((tiny_run / "history.json").read_text())
    return dict(run=run, state=state, labels=state.label_names, tokens=tokens, outputs=outputs,
                weights=weights, ck_model=ck_run.model, ckpt=ckpt, epochs=ck_run.config.train.epochs,
                es=es, history=history, probs=np.random.default_rng(0).random((300, 5)))


def copy_run(src: Path, dst: Path, interrupted: bool = False) -> Path:
    shutil.copytree(src, dst)
    if interrupted:  # as if killed after its last checkpoint, before the final writes
        for name in ("report.json", "thresholds.json", "model.keras", "predictions_dev.csv"):
            (dst / name).unlink()
        shutil.rmtree(dst / "preprocessor")
    return dst


def resetter(src: Path, dst: Path, interrupted: bool = False):
    def reset():
        shutil.rmtree(dst, ignore_errors=True)
        copy_run(src, dst, interrupted)
    return reset


# ------------------------------------------------------------------- CSV kinds

@pytest.mark.parametrize("split", ["train", "dev"])
def test_fuzz_train_dev_csv(split, data_dir, tmp_path, capsys):
    """`train` on damaged train/eng.csv or dev/eng.csv."""
    from kemo.data.brighter import load_split

    root = tmp_path / "root"
    for s, n in (("train", 80), ("dev", 30)):
        (root / "data" / s).mkdir(parents=True)
        (root / "data" / s / "eng.csv").write_bytes(sample_csv(data_dir / s / "eng.csv", n))
    target = root / "data" / split / "eng.csv"
    argv = ["train", "--backend", "jax", "--config", TINY, "--data-dir", root / "data",
            "--run-dir", root / "run", "--quiet"]

    def check(i, path, data, how):
        try:
            ex = load_split(root / "data", split, ["eng"])
        except InputError as e:
            check_message(str(e), [str(path)])
            return expect_refused(root, argv, str(e), [str(path)], capsys)
        try:
            want = oracle_track_a(data, labelled=True)
        except Invalid as e:
            raise accepted_invalid(e) from None
        names = [c for c in LABELS if c in want["labels"]]
        labels = np.array([[int(want["cells"][c][r]) for c in names]
                           for r in range(len(want["ids"]))], "float32")
        if (list(ex.ids) != want["ids"] or list(ex.texts) != want["texts"]
                or list(ex.label_names) != names or not np.array_equal(ex.labels, labels)):
            raise CaseFailure("kemo's rows differ from the csv module's")
        return "accepted"

    fuzz(f"{split}_csv", target, BYTE_OPS + LINE_OPS + CSV_OPS, check)


@pytest.mark.parametrize("which", ["test_file", "texts_file"])
def test_fuzz_predict_input(which, tiny_run, data_dir, tmp_path, capsys):
    """`predict RUN FILE` on a damaged Track A test file or plain id,text file."""
    from kemo.prediction.input_files import read_input_file

    root = tmp_path / "root"
    run = copy_run(tiny_run, root / "run")
    (root / "in").mkdir()
    if which == "test_file":
        target = root / "in" / "eng.csv"
        target.write_bytes(sample_csv(data_dir / "test" / "eng.csv", 40))
    else:
        target = root / "in" / "texts.csv"
        target.write_bytes(sample_csv(data_dir / "dev" / "eng.csv", 40, lambda r: r[:2]))
    out = root / "out"
    argv = ["predict", run, target, "--out", out]
    end_to_end = []

    def check(i, path, data, how):
        try:
            inp = read_input_file(path)
        except InputError as e:
            check_message(str(e), [str(path)])
            return expect_refused(root, argv, str(e), [str(path)], capsys)
        try:
            want = oracle_input(data)
        except Invalid as e:
            raise accepted_invalid(e) from None
        if (inp.ids != want["ids"] or inp.texts != want["texts"]
                or inp.is_track_a != want["track_a"] or list(inp.label_columns) != want["labels"]):
            raise CaseFailure("kemo's rows differ from the csv module's")
        if not end_to_end:  # once: the real command writes one prediction per id
            end_to_end.append(i)
            rc, o, err = cli(argv, capsys)
            if rc != 0:
                raise CaseFailure(f"predict: exit {rc}: {err[-500:]}")
            name = "pred_eng.csv" if want["track_a"] else f"{path.stem}.predictions.csv"
            with open(out / name, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            head = ["id"] + [c.capitalize() for c in want["labels"]] if want["track_a"] else None
            if [r[0] for r in rows[1:]] != want["ids"] or (head and rows[0] != head):
                raise CaseFailure(f"predict wrote other ids or header than the input's: {rows[0]}")
            shutil.rmtree(out)
        return "accepted"

    fuzz(f"predict_{which}", target, BYTE_OPS + LINE_OPS + CSV_OPS, check,
         reset=resetter(tiny_run, run))


def _evaluate_setup(data_dir, root: Path):
    """Gold (60 real dev rows), and a shuffled random prediction file for them."""
    gold = root / "gold" / "eng.csv"
    gold.parent.mkdir(parents=True)
    gold.write_bytes(sample_csv(data_dir / "dev" / "eng.csv", 60))
    header, body = oracle_rows(gold.read_bytes())
    rng = np.random.default_rng(SEED)
    rows = [[r[0], *map(str, rng.integers(0, 2, len(header) - 2))] for r in body]
    rows = [rows[k] for k in rng.permutation(len(rows))]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(
        [["id"] + [c.capitalize() for c in header[2:]]] + rows)
    return gold, text.getvalue().encode()


@pytest.mark.parametrize("which", ["gold", "prediction", "zip"])
def test_fuzz_evaluate(which, data_dir, tmp_path, capsys):
    """`evaluate` (always the real command): damaged gold file, prediction file or zip."""
    root = tmp_path / "root"
    gold, pred_bytes = _evaluate_setup(data_dir, root)
    pred = root / "pred" / "pred_eng.csv"
    pred.parent.mkdir()
    pred.write_bytes(pred_bytes)
    sub = root / "sub" / "submission.zip"
    sub.parent.mkdir()
    with zipfile.ZipFile(sub, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("track_a/pred_eng.csv", pred_bytes)
    target = {"gold": gold, "prediction": pred, "zip": sub}[which]
    scores = root / "out" / "scores.json"
    argv = ["evaluate", sub if which == "zip" else pred, "--gold", gold.parent, "--json", scores]
    if which == "zip":
        ops = BYTE_OPS * 2 + [lambda d, rng: zip_op(d, rng, csv_members=True)] * 6
    else:
        ops = BYTE_OPS + LINE_OPS + CSV_OPS

    def check(i, path, data, how):
        before = snapshot(root)
        rc, out, err = cli(argv, capsys)
        if rc != 0:  # the contract of expect_refused, on the run just made
            after = snapshot(root)
            if isinstance(rc, str) or rc != 2 or "Traceback" in out + err:
                raise CaseFailure(f"evaluate: exit {rc}: {err[-800:]}")
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            if len(errors) != 1:
                raise CaseFailure(f"evaluate: {len(errors)} error lines: {err[-800:]!r}")
            check_message(errors[0], [str(path)])
            if after != before:
                raise CaseFailure("evaluate changed files on refusal")
            return "refused"
        got = json.loads(scores.read_text())
        after = snapshot(root)
        for p in ("out", "out/scores.json"):
            after.pop(p, None)
        if after != before:
            raise CaseFailure("evaluate changed files other than --json")
        shutil.rmtree(root / "out")
        try:
            member = oracle_zip(data) if which == "zip" else None
            want = oracle_scores(member if which == "zip" else pred.read_bytes(), gold.read_bytes())
        except Invalid as e:
            raise accepted_invalid(e) from None
        s = got["per_language"]["eng"]
        if (s["rows"] != want["rows"] or s["labels"] != want["labels"]
                or not math.isclose(s["macro_f1"], want["macro_f1"], abs_tol=1e-12)
                or not math.isclose(s["micro_f1"], want["micro_f1"], abs_tol=1e-12)
                or not np.allclose([v["f1"] for v in s["per_label"].values()], want["f1"],
                                   atol=1e-12, rtol=0)
                or not math.isclose(got["overall"]["macro_f1"], want["macro_f1"], abs_tol=1e-12)
                or list(got["per_language"]) != ["eng"]):
            raise CaseFailure(f"scores {s['macro_f1']} differ from sklearn's {want['macro_f1']}")
        return "accepted"

    fuzz(f"evaluate_{which}", target, ops, check)


# ------------------------------------------------------------------- TOML --config

def test_fuzz_config_toml(data_dir, tmp_path, capsys):
    """`train --config FILE` on a damaged copy of configs/tiny.toml."""
    from kemo.config import load_config

    root = tmp_path / "root"
    root.mkdir()
    target = root / "tiny.toml"
    target.write_bytes(TINY.read_bytes())
    clean = tmp_path / "clean" / "tiny.toml"
    clean.parent.mkdir()
    argv = ["train", "--backend", "jax", "--config", target, "--data-dir", data_dir,
            "--run-dir", root / "run", "--quiet"]

    def check(i, path, data, how):
        try:
            cfg = load_config(path)
        except InputError as e:
            check_message(str(e), [str(path), "config key '"])
            return expect_refused(root, argv, str(e), [str(path), "config key '"], capsys)
        try:
            values = oracle_config(data)
        except Invalid as e:
            raise accepted_invalid(e) from None
        check_config_values(cfg, values)
        clean.write_text(toml_dump(values))
        if load_config(clean) != cfg:
            raise CaseFailure("the same values written cleanly read differently")
        return "accepted"

    fuzz("config_toml", target, BYTE_OPS + LINE_OPS + TOML_OPS, check)


# ------------------------------------------------------------------- run state

RUN_FILES = {"run_config": "config.toml", "thresholds": "thresholds.json",
             "distribution": "label_distribution.json", "report": "report.json"}


def _run_commands(run: Path, data_dir: Path, model: bool = True) -> list:
    cmds = [["predict", run, "--text", "I am so happy"],
            ["explain", run, "--text", "I am so happy", "--num-samples", "10"],
            ["export", run, "--no-benchmark"]]
    return cmds + ([] if model else [["report", run, "--data-dir", data_dir]])


@pytest.mark.parametrize("kind", list(RUN_FILES))
def test_fuzz_run_state(kind, reference, tiny_run, data_dir, tmp_path, capsys):
    """A damaged config.toml, thresholds.json, label_distribution.json or report.json of
    a finished run, read by predict, explain, export and report in turn."""
    from kemo.prediction.trained_run import read_run_state

    name = RUN_FILES[kind]
    root = tmp_path / "root"
    run = copy_run(tiny_run, root / "run")
    clean = copy_run(tiny_run, tmp_path / "clean")
    labels = reference["labels"]
    commands = _run_commands(run, data_dir, model=False)
    ops = BYTE_OPS + LINE_OPS + (TOML_OPS if name.endswith(".toml") else JSON_OPS)
    end_to_end = []

    def check(i, path, data, how):
        try:
            state = read_run_state(run)
        except InputError as e:
            check_message(str(e), [name])
            return expect_refused(root, commands[i % len(commands)], str(e), [name], capsys)
        try:
            if kind == "run_config":
                values = oracle_config(data)
            else:
                d = oracle_json(data)
                {"thresholds": oracle_thresholds, "distribution": oracle_distribution,
                 "report": oracle_report}[kind](d, labels)
        except Invalid as e:
            raise accepted_invalid(e) from None
        if state.label_names != labels:
            raise CaseFailure(f"label names {state.label_names}")
        if kind == "run_config":
            check_config_values(state.config, values)
            (clean / name).write_text(toml_dump(values))
        else:
            if kind == "thresholds":
                want = np.asarray(reference["probs"] >= np.asarray(d["thresholds"], "float32"), int)
                if state.thresholds.thresholds != [float(t) for t in d["thresholds"]] or \
                        not np.array_equal(state.thresholds.apply(reference["probs"]), want):
                    raise CaseFailure("thresholds or decisions differ from the file's")
            elif (state.distribution if kind == "distribution"
                  else state.report.to_dict()) != d:
                raise CaseFailure(f"{name} read as something other than its JSON")
            (clean / name).write_text(json.dumps(d, indent=1))
        again = read_run_state(clean)
        if (again.config, again.label_names, again.distribution, again.report) != (
                state.config, state.label_names, state.distribution, state.report) or \
                again.thresholds.to_dict() != state.thresholds.to_dict():
            raise CaseFailure("the same values written cleanly read differently")
        shutil.copy(tiny_run / name, clean / name)
        if kind == "thresholds" and not end_to_end:
            end_to_end.append(i)
            _predict_end_to_end(root, run, d["thresholds"], labels, capsys)
        return "accepted"

    fuzz(kind, run / name, ops, check, reset=resetter(tiny_run, run))


def _predict_end_to_end(root, run, thresholds, labels, capsys):
    """`predict` with the accepted thresholds: each 0/1 column is p >= threshold."""
    texts = root / "texts.csv"
    texts.write_text("id,text\n" + "".join(f"t{k},text number {k} {w}\n" for k, w in
                                          enumerate(["happy", "sad", "angry", "scared", "wow"] * 4)))
    rc, out, err = cli(["predict", run, texts, "--out", root / "out"], capsys)
    if rc != 0:
        raise CaseFailure(f"predict: exit {rc}: {err[-500:]}")
    with open(root / "out" / "texts.predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for name, t in zip(labels, thresholds):
            p = float(r[f"p_{name}"])
            if abs(p - t) > 1e-6 and int(r[name]) != int(p >= t):
                raise CaseFailure(f"predict: {name} = {r[name]} at p {p}, threshold {t}")
    shutil.rmtree(root / "out")
    texts.unlink()


def test_fuzz_model_keras(reference, tiny_run, data_dir, tmp_path, capsys):
    """A damaged model.keras (a zip): predict, explain and export in turn."""
    from kemo.prediction.trained_run import load_run

    root = tmp_path / "root"
    run = copy_run(tiny_run, root / "run")
    commands = _run_commands(run, data_dir)
    ops = BYTE_OPS * 2 + [zip_op] * 6

    def check(i, path, data, how):
        try:
            loaded = load_run(run)
        except InputError as e:
            check_message(str(e), ["model.keras"])
            return expect_refused(root, commands[i % len(commands)], str(e), ["model.keras"],
                                  capsys)
        try:  # the zip must read back intact (CRCs checked) to be the same model
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                need(z.testzip() is None, "a member fails its CRC")
        except (zipfile.BadZipFile, EOFError, OSError, Invalid) as e:
            raise accepted_invalid(Invalid(str(e))) from None
        weights = loaded.model.get_weights()
        outputs = np.asarray(loaded.model(reference["tokens"], training=False))
        if len(weights) != len(reference["weights"]) or not all(
                a.dtype == b.dtype and np.array_equal(a, b)
                for a, b in zip(weights, reference["weights"])):
            raise CaseFailure("kemo loaded other weights than the intact model's")
        if not np.array_equal(outputs, reference["outputs"]):
            raise CaseFailure("the loaded model computes other outputs than the intact one")
        return "accepted"

    fuzz("model_keras", run / "model.keras", ops, check, reset=resetter(tiny_run, run))


# ------------------------------------------------------------------- checkpoints

CK = "checkpoints/epoch-0002"
CHECKPOINT_FILES = {"latest": ["checkpoints/LATEST"], "state_json": [f"{CK}/state.json"],
                    "npz": [f"{CK}/model.npz", f"{CK}/optimizer.npz", f"{CK}/best.npz"],
                    "history_json": ["history.json"]}


@pytest.mark.parametrize("kind", list(CHECKPOINT_FILES))
def test_fuzz_checkpoint(kind, reference, tiny_run, data_dir, tmp_path, capsys, monkeypatch):
    """`train --resume` of an interrupted run with a damaged LATEST, state.json, .npz
    array file or history.json."""
    from kemo.training.checkpoint import read_checkpoint
    from kemo.training.resume import check_resumable_history

    monkeypatch.setenv("KEMO_DATA_DIR", str(data_dir))
    root = tmp_path / "root"
    run = copy_run(tiny_run, root / "run", interrupted=True)
    targets = [run / p for p in CHECKPOINT_FILES[kind]]
    ops = {"latest": BYTE_OPS + [latest_op] * 3, "npz": BYTE_OPS + NPZ_OPS}.get(
        kind, BYTE_OPS + LINE_OPS + JSON_OPS)
    model, ref = reference["ck_model"], reference["ckpt"]
    labels = reference["labels"]
    refusals = []

    def check(i, path, data, how):
        try:
            state = read_checkpoint(run, model, reference["epochs"], reference["es"])
            check_resumable_history(run, state, tuple(labels))
        except InputError as e:
            check_message(str(e), [path.name])
            refusals.append(i)
            if len(refusals) > RESUME_CLI_CASES:
                return "refused"
            return expect_refused(root, ["train", "--resume", run, "--quiet"], str(e),
                                  [path.name], capsys)
        try:
            if kind == "latest":
                need(data.decode("utf-8").strip() == "epoch-0002", "LATEST names another dir")
            elif kind == "state_json":
                d = oracle_json(data)
                need(is_number(d.get("epoch"), integer=True) and d["epoch"] == 2, "epoch")
                es = d.get("early_stopping")
                need(isinstance(es, dict), "early_stopping")
                need(is_number(es.get("best_epoch"), 0, d["epoch"] - 1, integer=True),
                     "best_epoch")
                need(es.get("wait") == d["epoch"] - 1 - es["best_epoch"]
                     and is_number(es["wait"], integer=True),
                     "wait is not the epochs since best_epoch")
                need(is_number(es.get("best")) and f32_equal(
                    es["best"], reference["history"][es["best_epoch"]]["val_macro_f1"]),
                     "best is not history.json's val_macro_f1 at best_epoch")
                if {k: state["early_stopping"][k] for k in ("wait", "best", "best_epoch")} != \
                        {k: es[k] for k in ("wait", "best", "best_epoch")}:
                    raise CaseFailure("early-stopping state differs from the file's")
            elif kind == "history_json":
                h = oracle_json(data, list)
                need(len(h) >= 2, "fewer epochs than the checkpoint")
                for k, e in enumerate(h):
                    need(isinstance(e, dict) and e.get("epoch") == k + 1
                         and not isinstance(e["epoch"], bool), f"entry {k}")
                    need(all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             and not (isinstance(v, int) and abs(v) > 1e308)
                             for v in e.values()),
                         f"entry {k}: a value is not a number (within float range)")
                es = ref["early_stopping"]
                need(f32_equal(h[es["best_epoch"]].get("val_macro_f1"), es["best"]),
                     "val_macro_f1 at best_epoch is not state.json's best")
        except (Invalid, UnicodeDecodeError) as e:
            raise accepted_invalid(Invalid(str(e))) from None
        for key in ("model", "optimizer", "best_weights"):
            a, b = state[key], ref[key]
            if len(a) != len(b) or not all(x.dtype == y.dtype and x.shape == y.shape
                                           and np.array_equal(x, y) for x, y in zip(a, b)):
                raise CaseFailure(f"{key} arrays differ from the intact checkpoint's")
        if state["epoch"] != 2:
            raise CaseFailure(f"epoch {state['epoch']}")
        return "accepted"

    fuzz(kind, targets, ops, check, reset=resetter(tiny_run, run, interrupted=True))


# ------------------------------------------------------------------- export --out

@pytest.mark.parametrize("which", ["export_json", ".kemo-export"])
def test_fuzz_export_dir(which, tiny_run, tmp_path, capsys):
    """`export RUN --out DIR` where DIR is an earlier kemo export whose export.json or
    marker is damaged: refused, or (accepted) a valid export kemo may replace."""
    from kemo.serving.export_dir import MARKER_SIGNATURE, check_out, entries
    from test_run_state import _marked_export

    root = tmp_path / "root"
    root.mkdir()
    out = _marked_export(root / "out", preprocessing={"lowercase": True, "sequence_length": 64},
                         export_seconds=12.5, versions={"keras": "3.15.1"})
    target = out / ("export.json" if which == "export_json" else ".kemo-export")
    argv = ["export", tiny_run, "--out", out, "--no-benchmark"]

    def check(i, path, data, how):
        try:
            listed = check_out(out)
        except InputError as e:
            check_message(str(e), [str(out)])
            return expect_refused(root, argv, str(e), [str(out)], capsys)
        try:
            info = oracle_json((out / "export.json").read_bytes())
            need(is_number(info.get("format_version"), integer=True)
                 and info["format_version"] == 1, "format_version")
            names = info.get("label_names")
            need(isinstance(names, list) and names and all(isinstance(n, str) for n in names)
                 and names == [n for n in LABELS if n in names], "label_names")
            need(numbers_ok(info.get("thresholds"), len(names), 0, 1), "thresholds")
            need(isinstance(info.get("keras_model"), dict)
                 and info["keras_model"].get("path") == "model.keras", "keras_model.path")
            need(isinstance(info.get("saved_model"), dict)
                 and info["saved_model"].get("path") == "saved_model"
                 and info["saved_model"].get("signature") == "serving_default", "saved_model")
            marker = oracle_json((out / ".kemo-export").read_bytes())
            need(marker.get("kemo") == MARKER_SIGNATURE, "marker signature")
            files = marker.get("files")
            need(isinstance(files, list) and all(
                isinstance(f, str) and f and not f.startswith("/") and ".." not in f.split("/")
                for f in files), "marker files")
            need(set(entries(out)) <= set(files), "an entry the marker does not list")
        except Invalid as e:
            raise accepted_invalid(e) from None
        if sorted(listed) != sorted(entries(out)):
            raise CaseFailure("check_out lists other entries than the folder's")
        return "accepted"

    fuzz(which.strip("."), target, BYTE_OPS + LINE_OPS + JSON_OPS, check)


# ----------------------------------------------------------------------- summary

def test_fuzz_summary(capsys, record_property):
    """How many cases each kind ran and how they ended (printed whatever -s says)."""
    lines = [f"fuzz: {N} cases per kind, seed {SEED} (KEMO_FUZZ_CASES, KEMO_FUZZ_SEED)",
             f"{'kind':<24}{'cases':>7}{'refused':>9}{'accepted':>10}{'failed':>8}"]
    total = Counter()
    for kind, c in STATS.items():
        n = sum(v for k, v in c.items() if k != "failed") + c["failed"]
        total.update({"cases": n, **c})
        lines.append(f"{kind:<24}{n:>7}{c['refused']:>9}{c['accepted']:>10}{c['failed']:>8}")
        record_property(f"fuzz_{kind}", dict(cases=n, **c))
    lines.append(f"{'total':<24}{total['cases']:>7}{total['refused']:>9}{total['accepted']:>10}"
                 f"{total['failed']:>8}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert STATS, "no fuzz test ran before the summary"
