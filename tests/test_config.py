"""TOML configs: loading, --set overrides, validation errors, dump round trip."""

from pathlib import Path

import pytest

from kemo.config import Config, config_from_dict, dump_config, load_config, parse_override
from kemo.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"


def test_load_tiny():
    cfg = load_config(TINY)
    assert isinstance(cfg, Config)
    assert cfg.name == "tiny"
    assert cfg.data.languages == ["eng"]
    assert cfg.data.val_fraction == 0.15
    assert cfg.data.length_buckets == [32, 64]
    assert cfg.model.preset == "" and cfg.model.pooling == "mean"
    assert cfg.model.sequence_length == 96
    assert cfg.loss.name == "focal" and cfg.loss.alpha == "inverse_frequency"
    assert cfg.train.epochs == 6 and cfg.train.batch_size == 32
    assert cfg.train.learning_rate == 1e-3 and isinstance(cfg.train.learning_rate, float)
    assert cfg.thresholds.tune is True
    # keys the file leaves out keep their defaults
    assert cfg.train.dtype_policy == "float32" and cfg.data.max_train_examples == 0


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "my_exp.toml"
    path.write_text("[train]\nepochs = 1\n")
    assert load_config(path).name == "my_exp"


def test_overrides():
    cfg = load_config(TINY, [
        "train.epochs=2",                       # int
        "train.learning_rate=3e-4",             # float
        "train.weight_decay=0",                 # int -> float field
        "data.languages=[\"eng\", \"afr\"]",    # list
        "data.length_buckets=[16, 48]",         # list of ints
        "model.pooling=cls",                    # bare string
        "model.preset=\"hf://org/model\"",      # quoted string
        "thresholds.tune=false",                # bool
        "loss.alpha=[1.0, 2, 0.5]",             # list of numbers
        "name=other",
    ])
    assert cfg.train.epochs == 2 and isinstance(cfg.train.epochs, int)
    assert cfg.train.learning_rate == 3e-4
    assert cfg.train.weight_decay == 0.0 and isinstance(cfg.train.weight_decay, float)
    assert cfg.data.languages == ["eng", "afr"]
    assert cfg.data.length_buckets == [16, 48]
    assert cfg.model.pooling == "cls"
    assert cfg.model.preset == "hf://org/model"
    assert cfg.thresholds.tune is False
    assert cfg.loss.alpha == [1.0, 2, 0.5]
    assert cfg.name == "other"
    # the rest is untouched
    assert cfg.train.batch_size == 32 and cfg.model.sequence_length == 96


def test_override_bare_strings_and_comma_lists():
    cfg = load_config(TINY, ["model.preset=hf://org/model", "data.languages=eng,hin",
                             "loss.alpha=none", "train.epochs = 4"])
    assert cfg.model.preset == "hf://org/model"
    assert cfg.data.languages == ["eng", "hin"]
    assert cfg.loss.alpha == "none"
    assert cfg.train.epochs == 4


def test_later_override_wins():
    assert load_config(TINY, ["train.epochs=2", "train.epochs=5"]).train.epochs == 5


def test_parse_override():
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("a.b=x=y") == (["a", "b"], "x=y")
    with pytest.raises(InputError, match="section.key=value"):
        parse_override("train.epochs")


@pytest.mark.parametrize("override, key", [
    ("training.epochs=3", "training"),          # unknown section
    ("train.epoch=3", "train.epoch"),           # unknown key
    ("epochs=3", "epochs"),                     # top-level unknown
    ("train.epochs=2.5", "train.epochs"),       # wrong type: float for int
    ("train.epochs=\"3\"", "train.epochs"),     # wrong type: string for int
    ("train.epochs=true", "train.epochs"),      # wrong type: bool for int
    ("thresholds.tune=1", "thresholds.tune"),   # wrong type: int for bool
    ("train.learning_rate=true", "train.learning_rate"),
    ("train.learning_rate=-1e-3", "train.learning_rate"),  # negative lr
    ("train.learning_rate=0", "train.learning_rate"),
    ("train.epochs=0", "train.epochs"),         # zero epochs
    ("train.batch_size=-4", "train.batch_size"),
    ("train.weight_decay=-0.1", "train.weight_decay"),
    ("data.val_fraction=1.0", "data.val_fraction"),
    ("data.val_fraction=-0.1", "data.val_fraction"),
    ("model.pooling=max", "model.pooling"),     # bad choice
    ("loss.name=mse", "loss.name"),
    ("train.schedule=linear", "train.schedule"),
    ("data.languages=[1, 2]", "data.languages"),
    ("data.length_buckets=[16, \"x\"]", "data.length_buckets"),
    ("loss.alpha=\"uniform\"", "loss.alpha"),
    ("loss.alpha=[1, \"a\"]", "loss.alpha"),
    ("model.num_layers=0", "model.num_layers"),
    ("loss.gamma=-1", "loss.gamma"),
    ("train.data=3", "train.data"),
])
def test_bad_override_names_key(override, key):
    with pytest.raises(InputError) as e:
        load_config(TINY, [override])
    assert f"'{key}'" in str(e.value)


def test_section_not_a_table():
    with pytest.raises(InputError, match="'train'"):
        load_config(TINY, ["train=3"])
    with pytest.raises(InputError, match="'train.epochs'"):
        config_from_dict({"train": {"epochs": {"x": 1}}})


def test_bad_key_in_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\npooling = \"max\"\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert "'model.pooling'" in str(e.value)
    path.write_text("[model]\nlayers = 3\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "'model.layers'" in str(e.value)
    path.write_text("[optim]\nlr = 3\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "'optim'" in str(e.value)


def test_missing_and_invalid_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1\n")
    with pytest.raises(InputError, match="not a valid TOML") as e:
        load_config(bad)
    assert str(bad) in str(e.value)
    bad.write_bytes(b"name = \"\xff\"\n")
    with pytest.raises(InputError, match="not a valid TOML"):
        load_config(bad)


@pytest.mark.parametrize("key", ["train.weight_decay", "loss.gamma", "data.sampling_strength"])
def test_nan_rejected(key):
    with pytest.raises(InputError, match=key):
        load_config(TINY, [f"{key}=nan"])


def test_dump_round_trip(tmp_path):
    cfg = load_config(TINY, ["train.learning_rate=2e-05", "loss.alpha=[1.5, 0.5, 1, 1, 1]",
                             "data.languages=[\"eng\", \"afr\"]", "thresholds.tune=false",
                             "model.preset=hf://x/y", "data.length_buckets=[]",
                             "name=quote\"and\\backslash"])
    text = dump_config(cfg)
    path = tmp_path / "config.toml"
    path.write_text(text)
    back = load_config(path)
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    # idempotent
    assert dump_config(back) == text


def test_dump_round_trip_defaults(tmp_path):
    cfg = Config()
    path = tmp_path / "experiment.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.toml")),
                         ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_config_parses(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.data.languages


def test_dump_round_trip_escapes_control_characters(tmp_path):
    src = tmp_path / "src.toml"
    src.write_text('name = "line1\\nline2\\ttab"\n[train]\nepochs = 1\n')
    cfg = load_config(src)
    assert cfg.name == "line1\nline2\ttab"
    path = tmp_path / "config.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_run_config_cut_at_a_line_break_is_refused(tmp_path):
    """A run's config.toml cut at a line break is valid TOML whose missing keys would take
    their defaults: its end line is missing, and it is refused naming the file."""
    cfg = load_config(TINY, ["train.epochs=7"])
    text = dump_config(cfg)
    lines = text.splitlines(keepends=True)
    path = tmp_path / "config.toml"
    for cut in (len(lines) - 1, len(lines) // 2, 2):
        path.write_text("".join(lines[:cut]))
        with pytest.raises(InputError, match=r"config.toml: truncated run config"):
            load_config(path)
    path.write_text(text)
    assert load_config(path).train.epochs == 7
    path.write_text(text.split("\n", 1)[1])  # a hand-written config (no head line) is as before
    assert load_config(path).train.epochs == 7
