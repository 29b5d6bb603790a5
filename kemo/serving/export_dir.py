"""The folder `kemo export --out DIR` writes: marked as kemo's, replaced only if kemo's.

An export is built in a staging folder beside DIR and renamed into place when
complete. Its `.kemo-export` marker lists every entry kemo wrote. An existing DIR is
replaced only when it is empty, or holds that marker, a valid `export.json` and
nothing that the marker does not list; only the listed entries are deleted. Any
other DIR is refused with one `InputError` line, and nothing in it is touched.

Example:
    check_out(out)              # before any work: refuse a foreign folder early
    stage = staging_dir(out)    # ... write the export into stage ...
    replace(out, stage)  # checks again, then swaps
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from kemo.run import json_files as rf
from kemo.errors import InputError
from kemo.run import layout as L

FORMAT_VERSION = 1
SAVED_MODEL = "saved_model"
SIGNATURE = "serving_default"
# texts and their languages: each row served as its language says (ensembles, and runs
# with per-language thresholds)
LANGUAGE_SIGNATURE = "serve_languages"
MARKER = ".kemo-export"
MARKER_SIGNATURE = "kemo export directory v1"


def read_export_info(out_dir) -> dict:
    """`export.json` of an export directory, validated: format version, label names,
    one finite threshold in [0, 1] per label, the artefacts' paths."""
    path = Path(out_dir) / "export.json"
    info = rf.read_json(path)
    version = rf.number(info, "format_version", path, integer=True)
    if version != FORMAT_VERSION:
        raise InputError(f"{rf.where(path, 'format_version')}: {version}, this kemo reads "
                         f"version {FORMAT_VERSION}")
    names = rf.label_names(rf.field(info, "label_names", path, list), path, "label_names")
    if info.get("label_kind") == "intensity":  # Track B: K cut points per label
        k = rf.number(info, "max_intensity", path, 1, integer=True)
        cuts = rf.field(info, "cut_points", path, dict)
        if list(cuts) != list(names):
            raise InputError(f"{rf.where(path, 'cut_points')}: labels {list(cuts)}, expected "
                             f"label_names {list(names)}")
        for n in names:
            rf.numbers(rf.field(info, ("cut_points", n), path, list), path, ("cut_points", n), k)
    else:
        rf.numbers(rf.field(info, "thresholds", path, list), path, "thresholds", len(names),
                   0.0, 1.0)
    keras_path = "members" if "ensemble" in info else L.MODEL  # members/<i>/...
    for keys, expected in ((("keras_model", "path"), keras_path),
                           (("saved_model", "path"), SAVED_MODEL),
                           (("saved_model", "signature"), SIGNATURE)):
        if rf.field(info, keys, path, str) != expected:
            raise InputError(f"{rf.where(path, keys)}: {info[keys[0]][keys[1]]!r}, kemo writes "
                             f"{expected!r}")
    return info


def _read_marker(out: Path) -> list[str]:
    """The entries kemo wrote into `out`, from its marker file (validated)."""
    path = out / MARKER
    marker = rf.read_json(path)
    if marker.get("kemo") != MARKER_SIGNATURE:
        raise InputError(f"{rf.where(path, 'kemo')}: not kemo's export marker")
    files = rf.field(marker, "files", path, list)
    for i, f in enumerate(files):
        if not isinstance(f, str) or not f or f.startswith("/") or ".." in f.split("/"):
            raise InputError(f"{rf.where(path, 'files')}[{i}]: not a relative path inside "
                             "the export")
    return files


def entries(out: Path) -> list[str]:
    """Every file and folder under `out`, relative, deepest first."""
    return sorted((p.relative_to(out).as_posix() for p in out.rglob("*")),
                  key=lambda p: (-p.count("/"), p))


def mark(stage: Path) -> None:
    """Write the marker into a complete export: every entry of `stage`, and itself."""
    (stage / MARKER).write_text(json.dumps(
        {"kemo": MARKER_SIGNATURE, "files": entries(stage) + [MARKER]}, indent=1) + "\n")


def check_out(out: Path) -> list[str]:
    """An existing `out` must be empty, or an export kemo marked as its own and holding
    only what kemo wrote there (it is replaced then). Returns those entries."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise InputError(f"export directory {out}: exists and is not a directory "
                         "(choose another --out)")
    present = entries(out)
    if not present:
        return []
    refuse = (f"export directory {out}: exists and is not an earlier kemo export "
              "({}); kemo replaces only a folder it marked as its own export "
              "(choose another --out, or empty it)")
    if not (out / MARKER).is_file():
        raise InputError(refuse.format(f"no {MARKER} marker"))
    written = set(_read_marker(out))
    foreign = [p for p in present if p not in written]
    if foreign:
        raise InputError(refuse.format(f"{foreign[-1]!r} was not written by kemo"))
    read_export_info(out)
    return present


def replace(out: Path, stage: Path) -> None:
    """Put `stage` in place of `out`, deleting only the entries kemo wrote in `out`."""
    from kemo.owned_dir import swap_in

    swap_in(out, stage, check_out(out))  # checked again: it may have changed meanwhile


def staging_dir(out: Path) -> Path:
    """A new directory beside `out`, renamed to `out` once the export is complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp makes it 0700
    return stage
