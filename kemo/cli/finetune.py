"""`kemo finetune`: a finished multilingual run fine-tuned on each language's own rows,
the winners on validation served with it as one model (kemo/finetune.py).

Example:
    kemo finetune runs/e5_all --languages deu eng --out runs/e5_ft --set train.epochs=2
"""

from __future__ import annotations

from kemo.cli.args import add_workflow_options
from kemo.finetune import finetune, format_table


def add_parser(sub):
    x = sub.add_parser(
        "finetune", help="fine-tune a finished run on each language alone; keep per language "
        "whichever wins on validation; serve them as one model",
        description="Example: kemo finetune runs/e5_all --languages deu eng --out runs/e5_ft "
                    "--set train.epochs=2 && kemo predict runs/e5_ft/system --split test")
    x.add_argument("source", help="a finished kemo run trained on several languages")
    x.add_argument("--out", required=True, help="folder of the per-language runs "
                   "(<out>/<lang>), the table (<out>/finetune.json) and the served system "
                   "(<out>/system); run the same command again to continue after a stop")
    x.add_argument("--languages", nargs="+", default=None,
                   help="languages to fine-tune (default: every language of the source)")
    x.add_argument("--config", default=None, help="the TOML config of each language's run "
                   "(default: the source's own config.toml); data.languages and "
                   "model.init_from are set per language")
    x.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of every language's run, e.g. --set "
                   "train.epochs=2 --set model.freeze_layers=0 (repeatable)")
    add_workflow_options(x, "when the system is predicted")


def main(args) -> int:
    result = finetune(args.source, args.languages, args.out, args.config, args.set,
                      args.data_dir, verbose=0 if args.quiet else 2,
                      batch_size=args.batch_size)
    print(format_table(result["rows"]))
    if result["system"]:
        print(f"\nsystem: {result['system']} (the source, and the fine-tuned runs of "
              f"{', '.join(result['kept'])} for their languages)")
    else:
        print(f"\nno fine-tuned run beat the source on validation: {result['source']} "
              "stays the system")
    return 0
