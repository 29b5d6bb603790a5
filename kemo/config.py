"""Experiment configs: TOML files parsed into typed dataclasses.

A config file has one table per section (`[data]`, `[model]`, `[loss]`, `[train]`,
`[thresholds]`); any key may be overridden from the command line with
`--set section.key=value` (the value is read as a TOML value, falling back to a bare
string). Unknown keys, wrong types, non-finite numbers and values outside the key's
range (`_RANGES` gives every number one) raise `InputError` naming the key. A file
may begin with a UTF-8 byte-order mark.

Example:
    cfg = load_config("configs/tiny.toml", overrides=["train.epochs=2"])
    cfg.train.epochs  # 2
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from kemo.errors import InputError


@dataclass
class DataConfig:
    """Which BRIGHTER languages to read and how to split and sample them."""

    languages: list[str] = field(default_factory=lambda: ["eng"])  # or "all": the 28
    data_dir: str = ""  # empty: --data-dir or $KEMO_DATA_DIR
    val_fraction: float = 0.1  # carved from train, stratified, seeded
    max_train_examples: int = 0  # 0: all; else a seeded subset (quick runs)
    # 0: all; else at most this many training rows of each language (a seeded subset,
    # taken before the validation split), so a 28-language run fits a CPU budget.
    max_train_examples_per_language: int = 0
    sampling_strength: float = 0.0  # 0: off; 1: weights = inverse label frequency
    # Languages drawn with probability proportional to (row count)^(1/T), on top of the
    # label weighting: 1 keeps the data's own mix (today's order exactly); large T
    # approaches uniform over languages; below 1 favours the large languages.
    language_temperature: float = 1.0
    length_buckets: list[int] = field(default_factory=list)  # empty: pad to max
    # Seed of the validation split (and of the max_train_examples subset). Its own seed,
    # not train.seed: runs that differ only in train.seed validate on the same rows, so
    # `kemo ensemble` takes a seed ensemble as is. -1 (the default of runs trained before
    # this one; their config.toml says so): train.seed.
    split_seed: int = 0
    # Which rows validate (early stopping, thresholds): "train" carves `val_fraction` of
    # train (held out); "dev" uses the dataset's own dev split, which is then no longer
    # held out (the report says so).
    validation: str = "train"
    # The dataset's description (`kemo.data.dataset`): "track_a" (BRIGHTER Track A,
    # `<data_dir>/{train,dev,test}/<lang>.csv`, the default) or "table" (one file per
    # split, described by the keys below; `data.languages` does not apply).
    layout: str = "track_a"
    train_file: str = ""  # table: paths relative to data_dir; empty: no such split
    dev_file: str = ""
    test_file: str = ""
    unlabelled_splits: list[str] = field(default_factory=lambda: ["test"])  # never gold
    format: str = ""  # "csv", "tsv", "jsonl", "parquet"; empty: from the file extension
    header: bool = True  # csv/tsv: the first line names the columns
    columns: list[str] = field(default_factory=list)  # header = false: names, in file order
    text_column: str = "text"
    id_column: str = ""  # empty: the 1-based row number
    language_column: str = ""  # empty: every row has the code `language`
    language: str = "und"
    # "columns": one 0/1 column per label (`label_columns`; empty: every column that is not
    # text, id or language); "names" / "indices": `labels_column` holds a list of label
    # names / of 0-based indices into the label names, split at `label_separator`.
    label_encoding: str = "columns"
    label_columns: list[str] = field(default_factory=list)
    labels_column: str = "labels"
    label_separator: str = ","
    label_names: list[str] = field(default_factory=list)  # or label_names_file
    label_names_file: str = ""  # one name a line (e.g. emotions.txt), relative to data_dir
    # JSON {group: [label, ...]} relative to data_dir (e.g. ekman_mapping.json): train on
    # the groups (a row has a group when it has any of its labels).
    label_groups_file: str = ""
    # A label no group names: "keep" (a label of its own, after the groups) or "drop".
    ungrouped_labels: str = "keep"
    # "binary": each label cell is 0/1 (Track A); "intensity": an ordinal 0..max_intensity
    # (Track B: 0 none, 1 low, 2 moderate, 3 high; `kemo.evaluation.intensity`). Track A layout
    # only: point data_dir at `brighter/track_b`.
    label_kind: str = "binary"
    max_intensity: int = 3
    # More datasets whose training rows join this one's: config files (paths from the
    # working directory) whose [data] table describes each; only that table is read.
    # Their rows only train: validation and dev stay this dataset's. The run's labels are
    # the union; a label a dataset lacks is unknown (masked) for its rows.
    extra_datasets: list[str] = field(default_factory=list)
    # Datasets drawn with probability proportional to (training rows)^(1/T), as
    # language_temperature does for languages: 1 keeps the rows' own mix; large T
    # approaches one equal share per dataset.
    dataset_temperature: float = 1.0


@dataclass
class ModelConfig:
    """The backbone (a preset, or an inline random architecture) and the head."""

    preset: str = ""  # Kaggle handle, hf://..., local dir, or offline name
    # Inline architecture with random weights, used when preset is empty.
    num_layers: int = 2
    num_heads: int = 2
    hidden_dim: int = 64
    intermediate_dim: int = 128
    vocabulary_size: int = 4000  # tiny: WordPiece vocab built from training texts
    sequence_length: int = 128
    pooling: str = "cls"  # "cls" or "mean" (masked)
    freeze_token_embeddings: bool = False  # keep the (large) vocabulary matrix fixed
    # N > 0: the embeddings and the lowest N transformer layers stay fixed, so a train
    # step neither updates them nor back-propagates through them (cheaper steps);
    # N = the backbone's layer count trains the head alone.
    freeze_layers: int = 0
    dropout: float = 0.1
    # true: no dropout on attention probabilities (the rest keeps `dropout`), so Keras
    # runs fused dot-product attention (cuDNN flash attention on a GPU).
    fused_attention: bool = False
    # true: keep only the embedding rows of tokens that occur in the run's texts (plus the
    # special tokens); ids are remapped so outputs on those texts are unchanged.
    prune_vocabulary: bool = False
    # A finished run's directory: start from its weights (backbone, and the head's rows
    # of the labels both runs share) and its tokenizer, instead of `preset`'s. The
    # run records it in report.json's meta; the source must stay in place until the
    # new run finishes (a resume reads it again).
    init_from: str = ""
    # data.label_kind = "intensity" only: "ordinal" (K cumulative logits per label,
    # P(y > k), CORAL-style) or "regression" (one K*sigmoid output per label, MSE);
    # `kemo.models.intensity_heads`. Ordinal is the default: it won a tiny comparison on
    # Track B validation (README "Track B").
    head: str = "ordinal"


@dataclass
class LossConfig:
    name: str = "bce"  # "bce" or "focal"
    gamma: float = 2.0
    alpha: typing.Any = "inverse_frequency"  # "inverse_frequency", "none", or a list


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    schedule: str = "cosine"  # "cosine" or "constant"
    early_stopping_patience: int = 0  # 0: off
    seed: int = 0
    dtype_policy: str = "float32"
    distribution: str = "none"  # "none" or "data_parallel"
    # A checkpoint every N training steps inside an epoch too (0: at epoch ends only);
    # `--resume` continues from the step exactly (kemo.training.checkpoint).
    checkpoint_every_steps: int = 0


@dataclass
class ThresholdConfig:
    tune: bool = True  # per-class thresholds from the validation split
    # true: the run decides with thresholds tuned on each language's own validation rows
    # (a label without positives there keeps the global threshold); false: one set.
    per_language: bool = False


@dataclass
class Config:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_CHOICES = {
    "data.validation": ("train", "dev"),
    "data.layout": ("track_a", "table"),
    "data.label_kind": ("binary", "intensity"),
    "model.head": ("regression", "ordinal"),
    "data.format": ("", "csv", "tsv", "jsonl", "parquet"),
    "data.label_encoding": ("columns", "names", "indices"),
    "data.ungrouped_labels": ("keep", "drop"),
    "model.pooling": ("cls", "mean"),
    "loss.name": ("bce", "focal"),
    "loss.alpha": ("inverse_frequency", "none"),  # or a list of numbers, one per label
    "train.schedule": ("cosine", "constant"),
    "train.dtype_policy": ("float32", "mixed_bfloat16", "bfloat16"),
    "train.distribution": ("none", "data_parallel"),
}
INT_MAX = 2**31 - 1  # int32: the largest count, shape or step every backend handles
MAX_SEQUENCE = 4096  # tokens per text: 8x the longest pretrained position table (512)
# Every number's range: key -> (low, low included, high, high included); high None:
# only finite (floats) or at most INT_MAX (ints). NaN fails every range.
_RANGES = {
    "data.val_fraction": (0, True, 1, False),
    "data.max_train_examples": (0, True, None, False),  # 0: all rows
    "data.max_train_examples_per_language": (0, True, None, False),  # 0: all rows
    "data.sampling_strength": (0, True, 10, True),  # (1/freq)^strength stays finite
    "data.language_temperature": (0, False, 1000, True),
    "data.dataset_temperature": (0, False, 1000, True),
    "data.length_buckets": (0, False, MAX_SEQUENCE, True),  # each entry
    "data.max_intensity": (1, True, 100, True),
    # Upper bounds on what sizes memory, checked before the run directory exists
    # (the largest real backbones: 48 layers, 64 heads, 8192 wide, 250k vocabulary).
    "model.num_layers": (0, False, 256, True),
    "model.num_heads": (0, False, 256, True),
    "model.hidden_dim": (0, False, 16384, True),
    "model.intermediate_dim": (0, False, 65536, True),
    "model.vocabulary_size": (0, False, 2_000_000, True),
    "model.sequence_length": (3, True, MAX_SEQUENCE, True),  # [CLS], a token, [SEP]
    "model.dropout": (0, True, 1, False),
    "model.freeze_layers": (0, True, 1000, True),  # at most the backbone's layer count
    "loss.gamma": (0, True, None, False),
    "loss.alpha": (0, True, None, False),  # each entry of a list
    "train.epochs": (0, False, None, False),
    "train.batch_size": (0, False, 2**16, True),  # as the CLI's --batch-size
    "train.learning_rate": (0, False, None, False),
    "train.weight_decay": (0, True, None, False),
    "train.warmup_fraction": (0, True, 1, True),
    "train.early_stopping_patience": (0, True, None, False),
    "train.checkpoint_every_steps": (0, True, None, False),  # 0: at epoch ends only
    "train.seed": (0, True, 2**32 - 1, True),  # what NumPy, TF and JAX seeds accept
    "data.split_seed": (-1, True, 2**32 - 1, True),  # -1: train.seed (older runs)
}


def _check_type(key: str, value, annotation):
    """Return `value` coerced to `annotation`, or raise InputError naming `key`."""
    hint = {"str": str, "int": int, "float": float, "bool": bool}.get(annotation)
    if annotation == "typing.Any":
        return value
    if annotation == "list[str]":
        if key == "data.languages" and value == "all":
            from kemo.data.brighter import LANGUAGES

            return list(LANGUAGES)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"config key '{key}': expected a list of strings, got {value!r}")
        return value
    if annotation == "list[int]":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise InputError(f"config key '{key}': expected a list of integers, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e308:  # float() would overflow
            raise InputError(f"config key '{key}': expected a finite number, got an integer "
                             f"of {len(str(abs(value)))} digits")
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise InputError(
            f"config key '{key}': expected {annotation}, got {type(value).__name__} {value!r}"
        )
    return value


def _in_range(key: str, value) -> str | None:
    """None if the number `value` is in `key`'s range, else what was expected."""
    low, low_in, high, high_in = _RANGES[key]
    if high is not None:
        bound = f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
    else:
        bound = f"{'>=' if low_in else '>'} {low}"
    ok = (value >= low if low_in else value > low)
    if high is not None:
        ok = ok and (value <= high if high_in else value < high)
    if not ok:  # NaN too
        return f"a value {bound}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a finite value {bound}"
    if isinstance(value, int) and high is None and value > INT_MAX:
        return f"a value {bound} and <= {INT_MAX}"
    return None


def _validate_value(key: str, value):
    if isinstance(value, str) and "\x00" in value:
        raise InputError(f"config key '{key}': NUL character in {value!r}")
    if key == "loss.alpha":
        if isinstance(value, list) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            bad = [v for v in value if _in_range(key, v)]
            if bad:
                raise InputError(f"config key 'loss.alpha': expected finite numbers >= 0, "
                                 f"got {bad[0]!r} in {value!r}")
            return
        if value not in _CHOICES[key]:
            raise InputError(
                f"config key 'loss.alpha': expected 'inverse_frequency', 'none' or a list "
                f"of numbers, got {value!r}"
            )
        return
    if key in _CHOICES and value not in _CHOICES[key]:
        raise InputError(f"config key '{key}': expected one of {_CHOICES[key]}, got {value!r}")
    if key in _RANGES:
        for v in value if isinstance(value, list) else [value]:
            expected = _in_range(key, v)
            if expected:
                raise InputError(f"config key '{key}': expected {expected}, got {v!r}")
    if key == "data.languages":
        if not value:
            raise InputError("config key 'data.languages': expected at least one language")
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise InputError(f"config key 'data.languages': {twice[0]!r} given twice")
    if key == "data.unlabelled_splits":
        bad = [v for v in value if v not in ("train", "dev", "test")]
        if bad:
            raise InputError(f"config key '{key}': unknown split {bad[0]!r} (expected some of "
                             "train, dev, test)")
    if key == "data.label_separator" and not value:
        raise InputError(f"config key '{key}': empty (e.g. \",\")")
    if key == "name" and "/" in value:
        raise InputError(f"config key 'name': {value!r} contains '/' (it names the run "
                         "directory runs/<name>-<time>)")


def override_keys() -> dict[str, list[str]]:
    """Section -> its `--set` keys as `key=DEFAULT` (TOML values), read from the
    dataclasses: what `kemo train --help` lists.

    Example:
        override_keys()["train"][0]   # 'epochs=10'
    """
    defaults = Config()
    return {name: [f"{f.name}={_toml_value(getattr(getattr(defaults, name), f.name))}"
                   for f in dataclasses.fields(getattr(defaults, name))]
            for name in _SECTIONS}


def _section_fields(section_cls) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(section_cls)}


_SECTIONS = {f.name: f for f in dataclasses.fields(Config) if f.name != "name"}


def config_from_dict(raw: dict, source: str = "config") -> Config:
    """Build a validated `Config` from a nested dict (as read from TOML)."""
    cfg = Config()
    for section, body in raw.items():
        if section == "name":
            cfg.name = _check_type("name", body, "str")
            _validate_value("name", cfg.name)
            continue
        if section not in _SECTIONS:
            raise InputError(
                f"{source}: unknown config section or key '{section}' "
                f"(known: name, {', '.join(_SECTIONS)})"
            )
        if not isinstance(body, dict):
            raise InputError(f"{source}: config key '{section}' must be a table")
        target = getattr(cfg, section)
        fields = _section_fields(type(target))
        for key, value in body.items():
            full = f"{section}.{key}"
            if key not in fields:
                raise InputError(
                    f"{source}: unknown config key '{full}' (known in [{section}]: "
                    f"{', '.join(fields)})"
                )
            value = _check_type(full, value, fields[key])
            _validate_value(full, value)
            setattr(target, key, value)
    _check_dataset(cfg.data, source)
    return cfg


def _check_dataset(data: DataConfig, source: str) -> None:
    """The keys of a table dataset (`data.layout = "table"`) that only make sense together;
    intensity labels (Track B) in the Track A layout only."""
    if data.label_kind == "intensity" and data.layout != "track_a":
        raise InputError(f"{source}: config key 'data.label_kind': \"intensity\" needs "
                         "data.layout = \"track_a\" (Track B's folders, <data_dir>/"
                         "{train,dev,test}/<lang>.csv)")
    if data.label_kind == "intensity" and data.extra_datasets:
        raise InputError(f"{source}: config key 'data.extra_datasets': not supported with "
                         "data.label_kind = \"intensity\" (their labels are not intensities)")
    if data.layout != "table":
        return
    if not data.train_file:
        raise InputError(f"{source}: config key 'data.train_file': empty (data.layout is "
                         "\"table\": the training file, relative to data.data_dir)")
    if not data.header and not data.columns:
        raise InputError(f"{source}: config key 'data.columns': empty while data.header is "
                         "false (name the file's columns in order)")
    if data.label_encoding == "indices" and not (data.label_names or data.label_names_file):
        raise InputError(f"{source}: config key 'data.label_names_file': empty while "
                         "data.label_encoding is \"indices\" (give the names, in index "
                         "order, there or in data.label_names)")
    if data.label_names and data.label_names_file:
        raise InputError(f"{source}: config keys 'data.label_names' and "
                         "'data.label_names_file' both set (give one)")
    if data.validation == "dev" and not data.dev_file:
        raise InputError(f"{source}: config key 'data.validation': \"dev\" but "
                         "data.dev_file is empty")


def _check_override_key(text: str, keys: list[str]) -> None:
    """InputError naming `--set` for a key no config has (a typo like train.epoch)."""
    if keys == ["name"]:
        return
    section = keys[0]
    if section not in _SECTIONS or len(keys) != 2:
        raise InputError(f"--set {text!r}: unknown config section or key '{section}' "
                         f"(expected section.key; sections: {', '.join(_SECTIONS)})")
    fields = _section_fields(_SECTIONS[section].default_factory)
    if keys[1] not in fields:
        raise InputError(f"--set {text!r}: unknown config key '{'.'.join(keys)}' (known in "
                         f"[{section}]: {', '.join(fields)})")


def parse_override(text: str) -> tuple[list[str], typing.Any]:
    """Parse `section.key=value`; the value is a TOML value or a bare string."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except ValueError:  # TOMLDecodeError, or an integer of more than 4300 digits
        value = raw
    return key.split("."), value


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a TOML config file, apply `--set` overrides and validate the result."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is fine
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a config file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read config file ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a valid TOML file ({_one_line(e)})") from None
    except ValueError as e:  # Python's int(): a number of more than 4300 digits
        raise InputError(f"{path}: not a valid TOML file ({str(e).split(':')[0]})") from None
    _check_complete(path, text)
    raw.setdefault("name", path.stem)
    for text in overrides:
        keys, value = parse_override(text)
        _check_override_key(text, keys)  # blamed on --set, not on the file
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {text!r}: '{k}' is not a section")
        node[keys[-1]] = value
    return config_from_dict(raw, source=str(path))


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


# A run's config.toml (`dump_config`) opens with RUN_CONFIG_HEAD and ends with RUN_CONFIG_END:
# a file cut at a line break is still valid TOML whose missing keys would silently take
# their defaults, so `load_config` refuses a file that has the head but not the end.
RUN_CONFIG_HEAD = "# kemo run config: every key of the run's resolved config; the last line is '# end'"
RUN_CONFIG_END = "# end"


def _check_complete(path: Path, text: str) -> None:
    """InputError for a run config (it opens with RUN_CONFIG_HEAD) that lacks its end line."""
    if not text.lstrip("\ufeff").startswith(RUN_CONFIG_HEAD):
        return  # a hand-written config, or a run written before the marker: as it is
    last = (text.rstrip().splitlines() or [""])[-1]
    if last.strip() != RUN_CONFIG_END:
        raise InputError(f"{path}: truncated run config: it must end with the line "
                         f"{RUN_CONFIG_END!r} (its last line is {last[:60]!r}); the keys after "
                         "the cut would silently take their defaults")


def dump_config(cfg: Config) -> str:
    """Serialise a config back to TOML (written into each run directory), every key, between
    RUN_CONFIG_HEAD and RUN_CONFIG_END so a cut file is refused when read back.

    Example:
        (run_dir / "config.toml").write_text(dump_config(cfg))
    """
    lines = [RUN_CONFIG_HEAD, f"name = {_toml_value(cfg.name)}"]
    for section in _SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in dataclasses.asdict(getattr(cfg, section)).items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines + ["", RUN_CONFIG_END]) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
