"""What `--help` tells a newcomer: `train --help` lists the configs and every `--set`
key with its default; no help text sends the reader to a source file."""

import dataclasses
import re

import pytest

from kemo.cli import COMMANDS, _parser
from kemo.cli.examples import _subparsers
from kemo.config import Config
from kemo.default_config import CONFIGS_DIR


def _helps():
    parser = _parser()
    out = {"kemo": parser.format_help()}
    for name, sub in _subparsers(parser).items():
        out[name] = sub.format_help()
        out.update({f"{name} {n}": s.format_help() for n, s in _subparsers(sub).items()})
    return out


def test_train_help_lists_every_config_and_set_key_with_its_default():
    text = _helps()["train"]
    for path in CONFIGS_DIR.rglob("*.toml"):
        assert path.relative_to(CONFIGS_DIR).with_suffix("").as_posix() in text
    defaults = Config()
    for section in ("data", "model", "loss", "train", "thresholds"):
        block = re.search(rf"^  {section}: (.*?)(?=^  \w+: |\n\n)", text, re.S | re.M)
        assert block, (section, text)
        for f in dataclasses.fields(getattr(defaults, section)):
            assert re.search(rf"(^|\s){f.name}=\S", block.group(1)), (section, f.name)
    assert "epochs=10" in text and 'pooling="cls"' in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_help_text_points_at_a_source_file(command):
    for name, text in _helps().items():
        if name.split()[0] == command:
            assert not re.search(r"(?<![\w.~/])kemo/[\w/.]*", text), (name, text)  # a source path


def test_local_processes_help_says_resume_takes_any_count():
    text = " ".join(_helps()["train"].split())
    assert "--resume takes any N" in text and "same N" not in text
