"""The splits a run trains, validates and reports on, as a config asks for them.

`load_data(cfg, data_dir)` reads train (and dev, for the languages that have a dev
file), takes the seeded `data.max_train_examples` subset (then at most
`data.max_train_examples_per_language` rows of each language), and carves the validation
split from train by iterative stratification (`brighter.train_val_split`), seeded by
`split_seed(cfg)`: `data.split_seed` (default 0), or `train.seed` when it is -1 (the
default before; a run's config.toml keeps the value it was trained with, so an older run
reloads and resumes on its own split). Two runs with the same data settings and split
seed validate on the same rows, whatever their `train.seed`: runs that differ only in
`train.seed` form an ensemble as they are.

Example:
    splits = load_data(load_config("configs/tiny.toml"), "../shared/data/brighter/track_a")
    len(splits.train), len(splits.val), splits.dev.label_names
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kemo.data.brighter import (
    Examples, load_split, resolve_data_dir, split_size_error, train_val_split,
)


@dataclass
class Splits:
    train: Examples
    val: Examples
    dev: Examples | None
    root: Path  # the Track A data root they were read from


def split_seed(cfg) -> int:
    """The seed of the validation split: `data.split_seed`, or `train.seed` if -1 (runs
    whose config.toml predates the fixed default)."""
    return cfg.train.seed if cfg.data.split_seed < 0 else cfg.data.split_seed


def load_data(cfg, data_dir) -> Splits:
    """Read and validate train (+ dev when present); carve the validation split.
    The data root: `data_dir` (--data-dir), else $KEMO_DATA_DIR, else `data.data_dir`."""
    root = resolve_data_dir(data_dir, cfg.data.data_dir)
    seed = split_seed(cfg)
    train_all = read = load_split(root, "train", cfg.data.languages)
    if cfg.data.max_train_examples and cfg.data.max_train_examples < len(train_all):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(train_all), cfg.data.max_train_examples, replace=False))
        train_all = train_all.subset(keep)
    cap = cfg.data.max_train_examples_per_language
    if cap:
        rng = np.random.default_rng(seed)
        keep = []
        for lang in dict.fromkeys(train_all.langs):
            rows = np.flatnonzero(train_all.langs == lang)
            keep.append(rows if len(rows) <= cap else rng.choice(rows, cap, replace=False))
        train_all = train_all.subset(np.sort(np.concatenate(keep)))
    train, val = train_val_split(train_all, cfg.data.val_fraction, seed)
    if len(val) == 0 or len(train) == 0:
        cut = ("data.max_train_examples_per_language" if cfg.data.max_train_examples_per_language
               and len(train_all) < min(len(read), cfg.data.max_train_examples or len(read))
               else "data.max_train_examples")
        raise split_size_error(read, train_all, cfg.data.val_fraction, root, cut)
    langs = list(dict.fromkeys(cfg.data.languages))
    with_dev = [lang for lang in langs if (root / "dev" / f"{lang}.csv").exists()]
    if len(with_dev) < len(langs):
        missing = [str(root / "dev" / f"{lang}.csv") for lang in langs if lang not in with_dev]
        print(f"note: no dev file {', '.join(missing)}: dev is scored on "
              f"{', '.join(with_dev) or 'no language'}", file=sys.stderr)
    dev = None
    if with_dev:
        dev = load_split(root, "dev", with_dev)
        if dev.label_names != train.label_names:
            dev = align_labels(dev, train.label_names)
    return Splits(train, val, dev, root)


def align_labels(ex: Examples, label_names) -> Examples:
    """Re-index `ex` to `label_names` (labels it lacks become unknown)."""
    cols = [ex.label_names.index(n) if n in ex.label_names else None for n in label_names]
    labels = np.stack([ex.labels[:, c] if c is not None else np.zeros(len(ex)) for c in cols], 1)
    mask = np.stack([ex.mask[:, c] if c is not None else np.zeros(len(ex)) for c in cols], 1)
    return Examples(ex.ids, ex.texts, ex.langs, labels.astype("float32"),
                    mask.astype("float32"), tuple(label_names), ex.has_labels)
