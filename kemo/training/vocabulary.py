"""Which token ids a run with `model.prune_vocabulary = true` keeps: the ids of every
text the run reads (train, dev and test files), or on resume the run's own
`vocabulary_keep.npy`; `kemo.models.vocab_prune` then cuts the tokenizer, embedding and
token arrays to them (it reads no file).

Example:
    preprocessor, backbone, arrays = prune_vocabulary(cfg, splits.root, preprocessor,
                                                      backbone, arrays)
    save_keep(run_dir, preprocessor)   # --resume rebuilds the same shapes
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kemo.config import load_config
from kemo.data.dataset import TrackADataset, open_dataset, read_available
from kemo.errors import InputError
from kemo.models.vocab_prune import (PrunedTokenizer, check_keep, prune, special_token_ids,
                                     text_token_ids, used_token_ids)
from kemo.run import layout as L

log = logging.getLogger(__name__)

KEEP_FILE = L.VOCABULARY_KEEP


def run_texts(root, languages, data=None):
    """Every text of the files a run reads: train, dev and test (where the dataset has
    them); the Track A files of `languages`, or the dataset `data` (a config's [data])
    describes."""
    dataset = (open_dataset(data, root) if data is not None
               else TrackADataset(Path(root), languages))
    texts = []
    for split in ("train", "dev", "test"):
        ex = read_available(dataset, split)
        if ex is not None:
            texts.extend(ex.texts)
    if data is not None and data.extra_datasets:  # their training rows train too
        for path in data.extra_datasets:
            texts.extend(open_dataset(load_config(path).data).read("train").texts)
    return texts


def read_keep(path, vocabulary_size: int, special_ids) -> np.ndarray:
    """`vocabulary_keep.npy` of a run, checked: increasing distinct ids below
    `vocabulary_size` holding every special id; InputError naming the file otherwise."""
    path = Path(path)
    try:
        keep = np.load(path, allow_pickle=False)
        keep = check_keep(keep, str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (model.prune_vocabulary is true: the run "
                         "stores its kept token ids there)") from None
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: not a kept-ids array ({str(e).splitlines()[0]})") from None
    if keep[-1] >= vocabulary_size:
        raise InputError(f"{path}: id {int(keep[-1])} is outside the tokenizer's "
                         f"{vocabulary_size} ids")
    missing = sorted(set(special_ids) - set(keep.tolist()))
    if missing:
        raise InputError(f"{path}: lacks the special token ids {missing}")
    return keep


def prune_vocabulary(cfg, data_root, preprocessor, backbone, arrays=None, resume_dir=None):
    """The training step: (preprocessor, backbone, arrays) pruned to the run's kept ids
    (`kept_ids`; `resume_dir`: the run being resumed)."""
    keep = kept_ids(cfg, data_root, preprocessor, arrays, resume_dir)
    try:
        return prune(preprocessor, backbone, keep, arrays)
    except ValueError as e:
        raise InputError(f"config key 'model.prune_vocabulary': {e}") from None


def kept_ids(cfg, data_root, preprocessor, arrays=None, resume_dir=None) -> np.ndarray:
    """The token ids a pruned run keeps, first found: the preprocessor's own (its
    tokenizer is a `PrunedTokenizer` already: it came from a token cache a pruned run
    wrote, e.g. the run's own `tokens/` on resume; checked against the run's
    `vocabulary_keep.npy`); a resumed run's `vocabulary_keep.npy`; else the ids of every
    text of the run's files (`run_texts`) and of `arrays` (a token cache `kemo tokenize`
    wrote with the unpruned tokenizer)."""
    tokenizer = preprocessor.tokenizer
    keep_file = Path(resume_dir) / KEEP_FILE if resume_dir is not None else None
    if isinstance(tokenizer, PrunedTokenizer):
        keep = tokenizer.keep
        if keep_file is not None and keep_file.is_file():
            stored = read_keep(keep_file, tokenizer.tokenizer.vocabulary_size(),
                               special_token_ids(tokenizer.tokenizer))
            if not np.array_equal(stored, keep):
                raise InputError(f"{keep_file}: {len(stored)} kept ids, but the run's token "
                                 f"cache was written with {len(keep)} others")
        return keep
    specials = special_token_ids(tokenizer)
    if keep_file is not None:
        return read_keep(keep_file, tokenizer.vocabulary_size(), specials)
    used = [a["token_ids"] for a in (arrays or {}).values()]
    try:
        used.append(text_token_ids(run_texts(data_root, cfg.data.languages, cfg.data),
                                   tokenizer))
    except ImportError:  # no TensorFlow: a token cache's ids are all there is
        if not used:
            raise
        log.warning("note: model.prune_vocabulary keeps the token cache's ids only "
                    "(tokenising the other texts, test included, needs TensorFlow)")
    return used_token_ids(used, specials)


def save_keep(run_dir, preprocessor) -> None:
    """Write the preprocessor's kept ids to the run's `vocabulary_keep.npy`."""
    np.save(Path(run_dir) / KEEP_FILE, np.asarray(preprocessor.tokenizer.keep, np.int32))
