"""The splits a run trains, validates and reports on, as a config asks for them.

`load_data(cfg, data_dir)` reads train (and dev, for the languages that have a dev
file), takes the seeded `data.max_train_examples` subset (then at most
`data.max_train_examples_per_language` rows of each language), and carves the validation
split from train by iterative stratification (`train_val_split`), seeded by
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

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kemo.config import load_config
from kemo.data.brighter import load_split, split_file
from kemo.data.examples import (  # noqa: F401 (align_labels re-exported)
    Examples, align_labels, concat_examples,
)
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.manifest import recorded_data_dir

log = logging.getLogger(__name__)


@dataclass
class Splits:
    train: Examples
    val: Examples
    dev: Examples | None
    root: Path  # the data root they were read from
    dataset: object = None  # kemo.data.dataset.TrackADataset or TableDataset
    # True: `val` is the dataset's dev split (data.validation = "dev"), not held out
    val_is_dev: bool = False
    # Which dataset each training row comes from (0: this config's, k: its k-th
    # data.extra_datasets entry); None without extra datasets.
    train_sources: np.ndarray | None = None


def split_seed(cfg) -> int:
    """The seed of the validation split: `data.split_seed`, or `train.seed` if -1 (runs
    whose config.toml predates the fixed default)."""
    return cfg.train.seed if cfg.data.split_seed < 0 else cfg.data.split_seed


def load_data(cfg, data_dir, recorded=None) -> Splits:
    """Read and validate train (+ dev when present); carve the validation split (or,
    with data.validation = "dev", validate on dev). The data root: see
    `kemo.data.dataset.open_dataset` (`recorded`: where the run read it, the last
    source asked)."""
    from kemo.data.dataset import open_dataset

    dataset = open_dataset(cfg.data, data_dir, recorded)
    root = dataset.root
    seed = split_seed(cfg)
    train_all = read = dataset.read("train")
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
    if cfg.data.validation == "dev":
        dev = _read_dev(cfg, dataset, train_all.label_names)
        if dev is None:
            raise InputError("config key 'data.validation': \"dev\" but the dataset has "
                             "no labelled dev split")
        return add_extra_datasets(cfg, Splits(train_all, dev, dev, root, dataset,
                                              val_is_dev=True))
    train, val = train_val_split(train_all, cfg.data.val_fraction, seed)
    train, val = inherit_split(cfg, data_dir, train, val, dataset)
    if len(val) == 0 or len(train) == 0:
        cut = ("data.max_train_examples_per_language" if cfg.data.max_train_examples_per_language
               and len(train_all) < min(len(read), cfg.data.max_train_examples or len(read))
               else "data.max_train_examples")
        raise split_size_error(read, train_all, cfg.data.val_fraction, root, cut)
    return add_extra_datasets(
        cfg, Splits(train, val, _read_dev(cfg, dataset, train.label_names), root, dataset))


def add_extra_datasets(cfg, splits: Splits) -> Splits:
    """`splits` with the training rows of every `data.extra_datasets` entry appended
    (each subset to its own `data.max_train_examples`, seeded), all splits re-indexed to
    the union of the labels (`label_order`; a label a dataset lacks is unknown for its
    rows), and `train_sources` set. Validation and dev are left as they are."""
    if not cfg.data.extra_datasets:
        return splits
    from dataclasses import replace

    from kemo.data.brighter import label_order
    from kemo.data.dataset import open_dataset

    parts = [splits.train]
    for k, path in enumerate(cfg.data.extra_datasets, 1):
        extra = load_config(path).data
        if extra.extra_datasets:
            raise InputError(f"{path}: config key 'data.extra_datasets': an extra dataset "
                             "brings no extra datasets of its own")
        ex = open_dataset(extra).read("train")
        cap = extra.max_train_examples
        if cap and cap < len(ex):
            rng = np.random.default_rng(split_seed(cfg) + k)
            ex = ex.subset(np.sort(rng.choice(len(ex), cap, replace=False)))
        parts.append(ex)
    names = tuple(label_order(dict.fromkeys(n for p in parts for n in p.label_names)))
    sources = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    dev = align_labels(splits.dev, names) if splits.dev is not None else None
    return replace(splits, train=concat_examples([align_labels(p, names) for p in parts]),
                   val=align_labels(splits.val, names), dev=dev, train_sources=sources)


def _read_dev(cfg, dataset, label_names) -> Examples | None:
    """The dev split aligned to the training labels (Track A: the languages with a dev
    file, a note naming the others); None without one."""
    if dataset.layout != "track_a":
        if not dataset.has("dev"):
            return None
        dev = dataset.read("dev")
        return dev if dev.has_labels else None
    root = dataset.root
    langs = list(dict.fromkeys(cfg.data.languages))
    with_dev = [lang for lang in langs if split_file(root, "dev", lang).exists()]
    if len(with_dev) < len(langs):
        missing = [str(split_file(root, "dev", lang)) for lang in langs if lang not in with_dev]
        log.warning(f"note: no dev file {', '.join(missing)}: dev is scored on "
                    f"{', '.join(with_dev) or 'no language'}")
    dev = None
    if with_dev:
        dev = dataset.read("dev", with_dev)
        if dev.label_names != label_names:
            dev = align_labels(dev, label_names)
    return dev


def inherit_split(cfg, data_dir, train: Examples, val: Examples, dataset=None):
    """A run started from another (`model.init_from`) validates on the rows its source
    validated on, for the languages both read, and trains on none of them: the source's
    weights never saw its validation rows, and the two runs' validation figures compare
    (and ensemble) on the same rows. Other languages keep their own split, and so does
    every row when the source read another dataset (`dataset`: this run's; e.g. Track A
    from a GoEmotions run): no row of this one can be among its validation rows. The
    source's rows are read where its training read them (its run.json). Returns
    (train, val).

    Example:
        train, val = inherit_split(cfg, data_dir, train, val, dataset)  # init_from set
    """
    from kemo.data.dataset import open_dataset

    source = getattr(cfg.model, "init_from", "")
    if not source:
        return train, val
    src_dir = Path(source).expanduser()
    src_cfg = load_config(src_dir / L.CONFIG)
    recorded = recorded_data_dir(src_dir)  # where it read them; moved since: this run's root
    src_root = recorded if recorded and Path(recorded).is_dir() else data_dir
    if dataset is not None and not same_dataset(open_dataset(src_cfg.data, src_root), dataset):
        log.info(f"init_from {source}: its source read another dataset; this run keeps "
                 "its own validation split")
        return train, val
    src = load_data(src_cfg, src_root)  # its own source's rows, if it has one
    shared = set(src_cfg.data.languages)
    held = set(zip(src.val.langs.tolist(), src.val.ids.tolist()))

    def is_held(ex: Examples) -> np.ndarray:
        return np.array([lang in shared and (lang, i) in held
                         for lang, i in zip(ex.langs.tolist(), ex.ids.tolist())], bool)

    def keeps_own(ex: Examples) -> np.ndarray:
        return np.array([lang not in shared for lang in ex.langs.tolist()], bool)

    t_held, v_held = is_held(train), is_held(val)
    v_own = keeps_own(val)
    new_train = concat_examples([train.subset(np.flatnonzero(~t_held)),
                                 val.subset(np.flatnonzero(~v_held & ~v_own))])
    new_val = concat_examples([val.subset(np.flatnonzero(v_held | v_own)),
                               train.subset(np.flatnonzero(t_held))])
    return new_train, new_val


def same_dataset(a, b) -> bool:
    """Whether two opened datasets are the same data: one layout under one root (a table
    dataset: the same train file too).

    Example:
        same_dataset(open_dataset(cfg_a.data, root), open_dataset(cfg_b.data, root))
    """
    if a.layout != b.layout or Path(a.root).resolve() != Path(b.root).resolve():
        return False
    return a.layout != "table" or a.data.train_file == b.data.train_file


# Below these a validation split tunes thresholds on a handful of examples (each label's
# threshold on its positives there) and early stopping follows noise.
MIN_VALIDATION_ROWS = 100
MIN_VALIDATION_POSITIVES = 5  # per label


def small_validation_note(rows: int, positives: dict, data_cfg) -> str | None:
    """A warning when a validation split of `rows` rows, with `positives` (label ->
    positive rows among those annotating it), is too small to tune thresholds on: what
    is small and which config keys (`data_cfg`: the run's `data` table) would enlarge
    it; None when it is large enough.

    Example:
        small_validation_note(10, {"calm": 1, "tense": 4}, cfg.data)
        # 'warning: the validation split is small to tune thresholds on: 10 rows ...'
    """
    few = {name: n for name, n in positives.items() if n < MIN_VALIDATION_POSITIVES}
    if rows >= MIN_VALIDATION_ROWS and not few:
        return None
    what = f"{rows} rows" + (f" (fewer than {MIN_VALIDATION_ROWS})"
                             if rows < MIN_VALIDATION_ROWS else "")
    if few:
        what += (f"; fewer than {MIN_VALIDATION_POSITIVES} positive rows for "
                 + ", ".join(f"{name} ({n})" for name, n in few.items()))
    if getattr(data_cfg, "validation", "train") == "dev":  # validates on the dev file
        advice = 'Use a larger dev file or validate on train (data.validation = "train")'
    else:
        keys = [f"data.val_fraction (now {data_cfg.val_fraction:g})"]
        for key in ("max_train_examples_per_language", "max_train_examples"):
            if getattr(data_cfg, key):
                keys.append(f"data.{key} (now {getattr(data_cfg, key)})")
        advice = "Raise " + " or ".join(keys)
    return (f"warning: the validation split is small to tune thresholds on: {what}; the "
            f"thresholds and early stopping follow a few examples. {advice}, or set "
            "thresholds.tune = false to decide at 0.5")


def validation_note(val: Examples, data_cfg) -> str | None:
    """`small_validation_note` for the validation split `val` (labels it annotates)."""
    known = val.mask.any(axis=0) if len(val) else np.zeros(len(val.label_names), bool)
    positives = (val.labels * val.mask).sum(axis=0)
    return small_validation_note(len(val), {name: int(positives[j]) for j, name in
                                            enumerate(val.label_names) if known[j]}, data_cfg)


def train_val_split(examples: Examples, val_fraction: float, seed: int):
    """Split into (train, val), per language, by iterative stratification.

    Iterative stratification (Sechidis et al., 2011) assigns rare labels first so each
    label's positives are spread over the two parts in proportion. Seeded.
    """
    rng = np.random.default_rng(seed)
    val_rows = []
    for lang in dict.fromkeys(examples.langs):
        rows = np.flatnonzero(examples.langs == lang)
        y = ((examples.labels[rows] * examples.mask[rows]) > 0).astype("float32")  # intensities
        chosen = _iterative_stratification(y, val_fraction, rng)
        val_rows.append(rows[chosen])
    val_rows = np.sort(np.concatenate(val_rows))
    is_val = np.zeros(len(examples), bool)
    is_val[val_rows] = True
    return examples.subset(np.flatnonzero(~is_val)), examples.subset(val_rows)


def split_size_error(read: Examples, used: Examples, val_fraction: float,
                     root: Path, cut_key: str = "data.max_train_examples") -> InputError:
    """Why `train_val_split` left a part empty, blaming the real culprit.

    At val_fraction f a language needs ceil(1 / min(f, 1 - f)) train rows (10 at 0.1).
    The culprit is the train files when each has fewer than that and under 10 rows,
    else `cut_key` (the config key that cut the rows read) when it did, else `data.val_fraction`.

    Example:
        raise split_size_error(read, read, 0.1, root)
        # InputError: .../train/eng.csv: 1 data row; at least 10 are needed to carve ...
    """
    f = val_fraction
    if f <= 0:
        return InputError(f"config key 'data.val_fraction': {f} leaves no validation split "
                          "(early stopping and threshold tuning need one; e.g. 0.1)")
    needed = max(2, int(np.ceil(round(1 / min(f, 1 - f), 6))))
    langs = list(dict.fromkeys(read.langs))
    have = {lang: int((read.langs == lang).sum()) for lang in langs}
    kept = ", ".join(f"{lang} {int((used.langs == lang).sum())}" for lang in langs)
    if all(n < min(needed, 10) for n in have.values()):
        files = "; ".join(f"{root / 'train' / f'{lang}.csv'}: {n} data row{'s' * (n != 1)}"
                          for lang, n in have.items())
        each = " per language" if len(have) > 1 else ""
        return InputError(f"{files}; at least {needed}{each} are needed to carve a "
                          f"validation split (data.val_fraction {f})")
    if len(used) < len(read):
        return InputError(f"config key '{cut_key}': {len(used)} rows ({kept}) "
                          f"leave an empty train or validation split; at data.val_fraction "
                          f"{f} each language needs at least {needed}")
    return InputError(f"config key 'data.val_fraction': {f} leaves an empty train or "
                      f"validation split ({kept} training rows; at {f} each language needs "
                      f"at least {needed})")


def _iterative_stratification(y: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Boolean mask of the rows chosen for the `fraction` part of a 2-way split."""
    n, c = y.shape
    desired = np.array([1.0 - fraction, fraction]) * n  # rows wanted per part
    desired_label = np.outer([1.0 - fraction, fraction], y.sum(axis=0))
    part = np.full(n, -1)
    remaining = np.ones(n, bool)
    while remaining.any():
        counts = y[remaining].sum(axis=0)
        if counts.sum() == 0:
            rows = rng.permutation(np.flatnonzero(remaining))
            for r in rows:
                k = int(np.argmax(desired))
                part[r] = k
                desired[k] -= 1
            break
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        rows = rng.permutation(np.flatnonzero(remaining & (y[:, label] > 0)))
        for r in rows:
            wants = desired_label[:, label]
            best = np.flatnonzero(wants == wants.max())
            if len(best) > 1:
                best = best[desired[best] == desired[best].max()]
            k = int(rng.choice(best))
            part[r] = k
            desired[k] -= 1
            desired_label[k] -= y[r]
            remaining[r] = False
    return part == 1
