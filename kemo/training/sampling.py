"""How often each training row is drawn: label weighting, language and dataset
tempering (`data.sampling_strength`, `data.language_temperature`,
`data.dataset_temperature`), the effect said and kept in `label_distribution.json`.

Example:
    weights = row_weights(cfg, splits.train, splits.train_sources)  # None: a permutation
    epoch_indices(len(splits.train), cfg.train.seed, 0, weights)
"""

from __future__ import annotations

import json
import logging

import numpy as np

from kemo.config import Config
from kemo.data.brighter import Examples
from kemo.data.pipeline import (epoch_indices, label_distribution, language_shares,
                                language_weights, sampling_weights)
from kemo.run import layout as L
from kemo.training.context import TrainContext

log = logging.getLogger(__name__)


def row_weights(cfg: Config, train_ex: Examples, sources=None):
    """Per-row draw probabilities: label weighting (`data.sampling_strength`) times
    language tempering (`data.language_temperature`) times dataset tempering
    (`data.dataset_temperature`, over `sources`: each row's dataset); None: a plain
    permutation."""
    weights = None
    if cfg.data.sampling_strength > 0:  # intensities: an emotion is present when > 0
        weights = sampling_weights((train_ex.labels > 0).astype("float32"), train_ex.mask,
                                   cfg.data.sampling_strength)
    weights = language_weights(train_ex.langs, cfg.data.language_temperature, weights)
    if sources is None:
        return weights
    return language_weights(sources, cfg.data.dataset_temperature, weights)


def sample(ctx: TrainContext, splits):
    """The training rows' draw weights (`row_weights`), their effect said and kept in
    `label_distribution.json` (a resumed run keeps its own); None: a plain permutation.
    `splits`: the run's `kemo.data.splits.Splits`."""
    cfg, train_ex = ctx.cfg, splits.train
    weights = row_weights(cfg, train_ex, splits.train_sources)
    present = (train_ex.labels > 0).astype("float32")  # intensities: the rate of > 0
    before = label_distribution(present, train_ex.mask)
    after = label_distribution(present, train_ex.mask,
                               epoch_indices(len(train_ex), cfg.train.seed, 0, weights))
    log.info("label distribution (positive rate), before and after sampling "
             f"(strength {cfg.data.sampling_strength}):")
    log.info(_format_distribution(train_ex.label_names, before, after))
    if ctx.several_languages:
        log.info(f"rows per language and epoch, before and after sampling (language "
                 f"temperature {cfg.data.language_temperature}):")
        log.info(_format_shares(train_ex.langs, weights))
    if splits.train_sources is not None:  # data.extra_datasets
        names_of = ["this config's"] + list(cfg.data.extra_datasets)
        log.info(f"rows per dataset and epoch, before and after sampling (dataset "
                 f"temperature {cfg.data.dataset_temperature}):")
        log.info(_format_shares(np.array([names_of[k] for k in splits.train_sources]),
                                weights, "dataset"))
    path = ctx.run_dir / L.LABEL_DISTRIBUTION
    if ctx.writer and not (ctx.resume and path.exists()):
        path.write_text(json.dumps(
            {"labels": list(train_ex.label_names), "before": before.tolist(),
             "after": after.tolist(), "sampling_strength": cfg.data.sampling_strength},
            indent=1))
    return weights


def _format_distribution(names, before, after) -> str:
    w = max([10] + [len(n) + 2 for n in names])
    rows = [f"{'label':<{w}}{'before':>9}{'after':>9}"]
    rows += [f"{n:<{w}}{b:>9.3f}{a:>9.3f}" for n, b, a in zip(names, before, after)]
    return "\n".join(rows)


def _format_shares(groups, weights, what: str = "language") -> str:
    """Rows per group (language or dataset) and epoch, before and after sampling."""
    n = len(groups)
    before, after = language_shares(groups), language_shares(groups, weights)
    w = max([10] + [len(g) + 2 for g in before])
    rows = [f"{what:<{w}}{'rows':>8}{'sampled':>9}"]
    rows += [f"{g:<{w}}{before[g] * n:>8.0f}{after[g] * n:>9.0f}" for g in sorted(before)]
    return "\n".join(rows)
