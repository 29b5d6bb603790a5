"""What a run trains and reports on (`Inputs`), read and checked before anything is
written (`prepare_inputs`), and its token arrays (`tokenize`).

Example:
    inputs = prepare_inputs(cfg, data_dir, Path("runs/tiny"), resume=False, tokens=None)
    inputs = tokenize(cfg, inputs, Path("runs/tiny"))   # a new Inputs, arrays filled
    inputs.arrays["train"]["token_ids"].shape
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from kemo import multiprocess
from kemo.config import Config
from kemo.data.brighter import Examples
from kemo.data.pipeline import tokenize_splits
from kemo.data.splits import load_data
from kemo.data.token_cache import MANIFEST, RUN_SPLITS, TokenCache, expected_manifest
from kemo.errors import InputError
from kemo.models import load_preprocessor
from kemo.run import layout as L
from kemo.training.context import is_intensity
from kemo.training.intensity_losses import make_intensity_loss
from kemo.training.losses import inverse_frequency_alpha, make_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What a run trains and reports on, checked before anything is written. A step
    that changes a part (tokenising, pruning the vocabulary) returns a new `Inputs`."""

    splits: object  # kemo.data.splits.Splits
    named: dict  # "train" / "val" / "dev" -> Examples
    loss: object
    expect: dict  # the token cache manifest this config and data call for
    cache: object  # TokenCache or None (tokenise)
    arrays: dict | None  # token arrays per split (None until tokenised)
    preprocessor: object
    source: object = None  # model.init_from: the finished run it starts from (a `Run`)

    @property
    def train(self) -> Examples:
        return self.splits.train

    @property
    def val(self) -> Examples:
        return self.splits.val

    @property
    def label_names(self):
        return self.splits.train.label_names


def prepare_inputs(cfg: Config, data_dir, run_dir: Path, resume: bool, tokens) -> Inputs:
    """Read and validate the splits; the loss; the token cache and preprocessor."""
    source = _init_source(cfg)  # checked before its config is read for the split
    splits = load_data(cfg, data_dir)  # config.toml keeps data.data_dir as configured
    loss = loss_for(cfg, splits.train)
    named = {n: ex for n, ex in zip(RUN_SPLITS, (splits.train, splits.val, splits.dev))
             if ex is not None}
    expect = expected_manifest(cfg, splits.root)
    cache = _open_token_cache(tokens, run_dir, resume, expect)
    arrays = {n: cache.arrays(n, ex) for n, ex in named.items()} if cache else None
    if cache:
        preprocessor = cache.load_preprocessor()
    elif source:  # the tokenizer the source run's weights were trained with
        preprocessor = source.preprocessor
    else:
        preprocessor = load_preprocessor(cfg.model, train_texts=splits.train.texts)
    return Inputs(splits, named, loss, expect, cache, arrays, preprocessor, source)


def loss_for(cfg: Config, train_ex: Examples):
    """The loss the config names (`loss.*`; an intensity run's follows `model.head`);
    focal's `alpha` checked against the labels."""
    if is_intensity(cfg):
        return make_intensity_loss(cfg.model.head, cfg.data.max_intensity)
    alpha = None
    if cfg.loss.name == "focal":
        if cfg.loss.alpha == "inverse_frequency":
            alpha = inverse_frequency_alpha(train_ex.labels, train_ex.mask)
        elif isinstance(cfg.loss.alpha, list):
            if len(cfg.loss.alpha) != len(train_ex.label_names):
                raise InputError(
                    f"config key 'loss.alpha': expected {len(train_ex.label_names)} values "
                    f"({', '.join(train_ex.label_names)}), got {len(cfg.loss.alpha)}")
            alpha = cfg.loss.alpha
    return make_loss(cfg.loss.name, cfg.loss.gamma, alpha)


def _open_token_cache(tokens, run_dir: Path, resume: bool, expect: dict):
    """The token cache to train from: `tokens` (`train --tokens`) or, resuming, the run's
    own `tokens/`; None: tokenise. Refused if written for other settings or data."""
    if tokens:
        return TokenCache.load(tokens, expect)
    if resume and (run_dir / L.TOKENS / MANIFEST).is_file():
        return TokenCache.load(run_dir / L.TOKENS, expect)
    return None


def _init_source(cfg: Config):
    """The finished run `model.init_from` names (every file checked), or None."""
    if not cfg.model.init_from:
        return None
    from kemo.prediction.trained_run import load_run

    key = "config key 'model.init_from'"
    if is_intensity(cfg):
        raise InputError(f"{key}: not supported with data.label_kind = \"intensity\" (the "
                         "intensity heads do not take a classifier's head)")
    if cfg.model.prune_vocabulary:
        raise InputError(f"{key}: cannot be combined with 'model.prune_vocabulary' (the "
                         "source run's tokenizer and embedding are used as they are)")
    path = Path(cfg.model.init_from).expanduser()
    if not path.is_dir():
        raise InputError(f"{key}: {path} is not a directory (a finished kemo run)")
    source = load_run(path)
    if cfg.model.preset and cfg.model.preset != source.config.model.preset:
        raise InputError(f"{key}: {path} was trained from preset "
                         f"{source.config.model.preset or '(random inline)'!r}, this config "
                         f"names {cfg.model.preset!r} (set model.preset to the same, or \"\")")
    return source


def tokenize(cfg: Config, inputs: Inputs, run_dir: Path) -> Inputs:
    """`inputs` with the token arrays of every split (from the cache, else tokenised),
    kept in the run's `tokens/` (by the writer)."""
    t0 = time.time()
    cache, arrays = inputs.cache, inputs.arrays
    if cache:
        log.info(f"tokens from {cache.path} (sequence_length {cfg.model.sequence_length})")
    else:
        arrays = tokenize_splits({n: ex.texts for n, ex in inputs.named.items()},
                                 inputs.preprocessor)
        log.info(f"tokenised in {time.time() - t0:.1f}s "
                 f"(sequence_length {cfg.model.sequence_length})")
    if multiprocess.is_writer() and (cache is None or cache.path != run_dir / L.TOKENS):
        TokenCache.write(run_dir / L.TOKENS, inputs.named, arrays, inputs.preprocessor,
                         inputs.expect,
                         cache.manifest["tokenize_seconds"] if cache else time.time() - t0)
    return replace(inputs, arrays=arrays)
