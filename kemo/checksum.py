"""The sha256 of a file's bytes: how kemo knows a file is the one it recorded (data
files and token caches, a run's model file, pretrained weights).

Example:
    file_sha256("runs/tiny/model.keras")   # 'a3f1...' (64 hex digits)
"""

from __future__ import annotations

import hashlib


def file_sha256(path) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
