"""`kemo tokenize`: a config's splits tokenised once into a token cache (kemo/data/token_cache.py).

Example:
    kemo tokenize --config configs/tiny.toml --out /tmp/tokens-tiny
"""

from __future__ import annotations

from kemo.cli.args import BACKENDS, DATA_DIR_HELP
from kemo.config import load_config
from kemo.default_config import resolve_config


def add_parser(sub):
    x = sub.add_parser("tokenize", help="tokenise the splits a config trains, validates and "
                       "reports on (and test) once, into a token cache for train/predict "
                       "--tokens (training from it needs no TensorFlow)")
    x.add_argument("--config", help="a TOML file, or a name in configs/ such as tiny "
                   "(default: configs/default.toml)")
    x.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, as for kemo train (repeatable)")
    x.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    x.add_argument("--out", required=True, metavar="CACHE",
                   help="the cache directory: new, empty, or an earlier cache (replaced)")
    x.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")


def main(args) -> int:
    import time as clock

    from kemo.data.brighter import resolve_data_dir

    cfg = load_config(resolve_config(args.config), args.set)  # a file, or a name: tiny
    resolve_data_dir(args.data_dir, cfg.data.data_dir)  # a missing one: before the imports
    from kemo.data.token_cache import check_cache_target

    check_cache_target(args.out)  # before the work
    from kemo.data.dataset import read_available
    from kemo.data.pipeline import tokenize_splits
    from kemo.data.splits import load_data
    from kemo.data.token_cache import TokenCache, expected_manifest
    from kemo.models import load_preprocessor

    splits = load_data(cfg, args.data_dir)
    named = {"train": splits.train, "val": splits.val, "dev": splits.dev,
             "test": read_available(splits.dataset, "test")}
    named = {k: v for k, v in named.items() if v is not None}
    expect = expected_manifest(cfg, splits.root, list(named))
    t0 = clock.time()
    preprocessor = load_preprocessor(cfg.model, train_texts=splits.train.texts)
    arrays = tokenize_splits({name: ex.texts for name, ex in named.items()}, preprocessor)
    seconds = clock.time() - t0
    cache = TokenCache.write(args.out, named, arrays, preprocessor, expect, seconds)
    size = sum(f.stat().st_size for f in cache.path.rglob("*") if f.is_file())
    print(f"tokenised {', '.join(f'{n} {len(ex)}' for n, ex in named.items())} rows in "
          f"{seconds:.1f}s; wrote {cache.path} ({size / 2**20:.1f} MiB)")
    return 0
