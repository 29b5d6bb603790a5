"""Outputs appear whole or not at all: write beside the final name, then rename.

Every file kemo writes for a user (predictions, submission zips, reports, explanations,
ensemble files, scores) goes through `atomic_path`: the content is written to a hidden
temporary name in the same folder and moved onto the final name with `os.replace`
(atomic on one file system). A Ctrl-C or a crash part-way leaves the earlier complete
file, or none; never a truncated one under the final name. The temporary file is
removed on any failure.

Example:
    write_text(run_dir / "report.json", json.dumps(report))
    write_csv(frame, out_dir / "pred_eng.csv")
    with atomic_path(out_dir / "submission.zip") as tmp:
        zipfile.ZipFile(tmp, "w").close()
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def temp_name(path) -> Path:
    """The hidden name beside `path` that its content is written to first."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def write_csv(frame, path, **kwargs) -> Path:
    """`frame.to_csv(path, index=False, **kwargs)`, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, **kwargs)
    return Path(path)
