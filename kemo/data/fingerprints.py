"""Content fingerprints: of data files, of a tokenizer preset, of a preset's tokenizer files.

Two things with the same fingerprint behave the same: the same file bytes; a saved
keras-hub preprocessor preset with the same config (tokenizer class, special tokens,
lowercasing, accent stripping, sequence_length; layer names left out) and the same
vocabulary assets tokenises every text to the same ids. `kemo.data.token_cache`
records them to refuse tokens made by another tokenizer or from other data.

Example:
    preset_fingerprint("runs/tiny/preprocessor") == preset_fingerprint("tokens/tiny/preprocessor")
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path

from kemo.checksum import file_sha256
from kemo.errors import InputError
from kemo.presets import resolve_preset

# Files of a local preset directory that decide its tokenizer (weights left out).
TOKENIZER_FILES = ("vocab*", "merges*", "*tokenizer*", "special_tokens_map.json", "*.model",
                   "*.spm", "sentencepiece*", "preprocessor.json")


def _layer_config(obj):
    """A serialised config without layer names (`name` beside `trainable`), which
    Keras numbers per process (`..._1`)."""
    if isinstance(obj, dict):
        drop = "name" if "trainable" in obj else None
        return {k: _layer_config(v) for k, v in obj.items() if k != drop}
    if isinstance(obj, list):
        return [_layer_config(v) for v in obj]
    return obj


def preset_fingerprint(preset_dir) -> str:
    """sha256 of a saved preprocessor preset: `preprocessor.json` (names dropped) and
    every file under `assets/` (the vocabulary). Equal fingerprints tokenise alike."""
    preset_dir = Path(preset_dir)
    try:
        config = json.loads((preset_dir / "preprocessor.json").read_text())
        h = hashlib.sha256(json.dumps(_layer_config(config), sort_keys=True).encode())
        for f in sorted(p for p in (preset_dir / "assets").rglob("*") if p.is_file()):
            h.update(f.relative_to(preset_dir).as_posix().encode() + b"\0")
            h.update(file_sha256(f).encode())
    except (OSError, ValueError) as e:
        raise InputError(f"{preset_dir}: not a readable preprocessor preset "
                         f"({type(e).__name__}: {e})") from None
    return h.hexdigest()


def preset_files_sha(preset: str) -> str | None:
    """sha256 over the tokenizer files of a local preset directory (None otherwise)."""
    if not preset:
        return None
    path = Path(resolve_preset(preset))
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    files = [p for p in path.iterdir() if p.is_file()
             and any(fnmatch.fnmatch(p.name, pat) for pat in TOKENIZER_FILES)]
    files += [p for p in (path / "assets").rglob("*") if p.is_file()]
    for f in sorted(files):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()
