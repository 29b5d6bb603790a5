"""Where a preset's files are: an offline model name, a local directory, or a hub handle.

`resolve_preset` maps kemo's offline model names (`kemo.weights.OFFLINE_MODELS`) to the
directory they are materialised in (on first use), checks a local directory holds a
keras-hub or Hugging Face model, and passes hub handles (`hf://`, `kaggle://`) through.
Light: no keras-hub, keras or TensorFlow import (the data layer reads it).

Example:
    resolve_preset("e5-small-multi")   # ~/.cache/kemo/weights/e5-small-multi/...
"""

from __future__ import annotations

import os
from pathlib import Path

from kemo.errors import InputError


def resolve_preset(preset: str) -> str:
    """Map an offline model name to its directory (materialising it on first use)
    and check local paths exist."""
    if preset.startswith(("hf://", "kaggle://", "gs://", "modelscope://")):
        return preset
    from kemo import weights

    if preset in weights.OFFLINE_MODELS:
        return str(weights.ensure(preset))  # materialised on first use
    looks_like_path = os.sep in preset or preset.startswith((".", "~"))
    if looks_like_path:
        path = Path(preset).expanduser()
        if not path.is_dir():
            raise InputError(f"config key 'model.preset': preset directory {preset!r} does not exist")
        if not ((path / "config.json").is_file() or (path / "metadata.json").is_file()):
            raise InputError(
                f"config key 'model.preset': {preset!r} holds no config.json "
                "(expected a keras-hub preset or a Hugging Face model directory)"
            )
        return str(path)
    return preset
