"""The bad-input corpus: each malformed input stops `kemo train` before anything is
written, with one `error:` line naming the file, row and column (or the key), exit 2.

All cases run in-process through `kemo.cli.main` (the same code path as
`scripts/train.py`); `test_cli_errors.py` runs some as real subprocesses. Inputs that
are accepted by design (BOM, mixed line endings, very long texts) are checked at the
end.
"""

from pathlib import Path

import pytest

from kemo.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"
HEADER = "id,text,anger,fear,joy,sadness,surprise"


def _rows(n, prefix="eng_train"):
    return [f"{prefix}_{i:03d},text number {i} is here,{i % 2},0,1,0,{(i // 2) % 2}"
            for i in range(1, n + 1)]


def _write_root(root: Path, train: bytes | str | None = None, dev: str | None = None) -> Path:
    for split in ("train", "dev"):
        (root / split).mkdir(parents=True, exist_ok=True)
    body = "\n".join([HEADER] + _rows(40)) + "\n"
    train = body if train is None else train
    (root / "train" / "eng.csv").write_bytes(train if isinstance(train, bytes) else train.encode())
    (root / "dev" / "eng.csv").write_text(
        dev if dev is not None else "\n".join([HEADER] + _rows(10, "eng_dev")) + "\n")
    return root


def _good():
    return [HEADER] + _rows(40)


def _replace_cell(row: int, column: str, value: str) -> str:
    lines = _good()
    cols = HEADER.split(",")
    cells = lines[row].split(",")
    cells[cols.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


TRAIN = "train/eng.csv"
# name -> (train file content or None, extra argv, substrings the error must contain)
CSV_CASES = {
    "wrong_delimiter": ("\n".join(l.replace(",", ";") for l in _good()), [],
                        [TRAIN, "header", "missing column 'id'"]),
    "missing_header": ("\n".join(_rows(40)) + "\n", [], [TRAIN, "header", "missing column 'id'"]),
    "duplicated_ids": ("\n".join(_good() + [_rows(1)[0]]) + "\n", [],
                       [TRAIN, "row 41", "column 'id'", "duplicated id", "row 1"]),
    "label_2": (_replace_cell(5, "joy", "2"), [], [TRAIN, "row 5", "column 'joy'", "'2'"]),
    "label_minus_1": (_replace_cell(6, "anger", "-1"), [], [TRAIN, "row 6", "column 'anger'", "'-1'"]),
    "label_half": (_replace_cell(7, "fear", "0.5"), [], [TRAIN, "row 7", "column 'fear'", "'0.5'"]),
    "label_yes": (_replace_cell(8, "sadness", "yes"), [], [TRAIN, "row 8", "column 'sadness'", "'yes'"]),
    "label_blank": (_replace_cell(9, "surprise", ""), [], [TRAIN, "row 9", "column 'surprise'", "''"]),
    "text_empty_nan": (_replace_cell(3, "text", ""), [], [TRAIN, "row 3", "column 'text'", "blank text"]),
    "text_whitespace": (_replace_cell(4, "text", '"   "'), [], [TRAIN, "row 4", "column 'text'",
                                                                "blank text"]),
    "blank_id": (_replace_cell(2, "id", ""), [], [TRAIN, "row 2", "column 'id'", "blank id"]),
    "invalid_utf8": ("\n".join(_good()).encode().replace(b"number 3 ", b"number \xff\xfe "), [],
                     [TRAIN, "line 4", "not valid UTF-8"]),
    "empty_file": ("", [], [TRAIN, "empty file"]),
    "whitespace_file": ("\n\n  \n", [], [TRAIN, "empty file"]),
    "header_only": (HEADER + "\n", [], [TRAIN, "header only"]),
    "no_label_columns": ("id,text\na,hello\n", [], [TRAIN, "no label columns"]),
    "renamed_label": (_good()[0].replace("joy", "happiness") + "\n" + "\n".join(_rows(40)), [],
                      [TRAIN, "unexpected column 'happiness'"]),
    "renamed_text": (_good()[0].replace("text", "tweet") + "\n" + "\n".join(_rows(40)), [],
                     [TRAIN, "missing column 'text'"]),
    "duplicated_column": (HEADER + ",joy\n" + "\n".join(r + ",1" for r in _rows(40)), [],
                          [TRAIN, "duplicated column"]),
    "ragged_row": ("\n".join(_good()[:10] + ["eng_x,too,many,1,0,1,0,1,0,1"] + _good()[10:]), [],
                   [TRAIN, "row 10 (line 11): header has 7 fields, row 10 has 10"]),
    "unknown_language_file": (None, ["--set", 'data.languages=["eng", "klingon"]'],
                              ["data.languages", "'klingon'"]),
    "language_file_missing": (None, ["--set", 'data.languages=["deu"]'],
                              ["train/deu.csv", "file not found"]),
}

CONFIG_CASES = {
    "unknown_key": (["--set", "train.epoch=3"], ["'train.epoch'", "unknown config key"]),
    "unknown_section": (["--set", "optimizer.lr=3"], ["'optimizer'", "unknown config section"]),
    "wrong_type": (["--set", 'train.epochs="ten"'], ["'train.epochs'", "expected int"]),
    "negative_lr": (["--set", "train.learning_rate=-1e-3"], ["'train.learning_rate'", "> 0"]),
    "zero_epochs": (["--set", "train.epochs=0"], ["'train.epochs'", "> 0"]),
    "bad_choice": (["--set", "loss.name=hinge"], ["'loss.name'", "'hinge'"]),
    "val_fraction_one": (["--set", "data.val_fraction=1.0"], ["'data.val_fraction'", "[0, 1)"]),
    "nan_gamma": (["--set", "loss.gamma=nan"], ["'loss.gamma'", ">= 0"]),
    "alpha_wrong_length": (["--set", "loss.alpha=[1.0, 2.0]"], ["'loss.alpha'", "expected 5 values"]),
    "preset_missing": (["--set", 'model.preset="./no/such/preset"'],
                       ["'model.preset'", "./no/such/preset", "does not exist"]),
    "offline_name_unknown_hub": (["--set", 'model.preset="not_a_real_preset_xyz"'],
                                 ["'model.preset'", "not_a_real_preset_xyz"]),
    "malformed_override": (["--set", "train.epochs"], ["--set", "key=value"]),
    "missing_config": (["--config", "configs/nope.toml"], ["configs/nope.toml", "not found"]),
}


def _run(argv, capsys):
    code = main(["train", "--backend", "jax", *argv])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    return code, lines


def _assert_one_error(code, lines, needles, run_dir):
    assert code == 2, lines
    errors = [l for l in lines if l.startswith("error:")]
    assert len(errors) == 1, lines
    assert not any("Traceback" in l for l in lines), lines
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert not Path(run_dir).exists(), "a run directory was written"


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv(case, tmp_path, capsys):
    content, extra, needles = CSV_CASES[case]
    root = _write_root(tmp_path / "data", train=content)
    run_dir = tmp_path / "run"
    code, lines = _run(["--config", str(TINY), "--data-dir", str(root), "--run-dir", str(run_dir),
                        *extra], capsys)
    _assert_one_error(code, lines, needles, run_dir)


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(case, tmp_path, capsys):
    extra, needles = CONFIG_CASES[case]
    root = _write_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    argv = ["--data-dir", str(root), "--run-dir", str(run_dir), *extra]
    if "--config" not in extra:
        argv = ["--config", str(TINY), *argv]
    code, lines = _run(argv, capsys)
    _assert_one_error(code, lines, needles, run_dir)


def test_truncated_weight_file(tmp_path, capsys):
    """A Hugging Face-format preset whose safetensors file was cut short."""
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").write_text(
        '{"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 50, '
        '"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, '
        '"intermediate_size": 16, "max_position_embeddings": 64, "type_vocab_size": 2}')
    (preset / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]))
    (preset / "model.safetensors").write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\": tru")
    root = _write_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    code, lines = _run(["--config", str(TINY), "--data-dir", str(root), "--run-dir", str(run_dir),
                        "--set", f'model.preset="{preset}"'], capsys)
    _assert_one_error(code, lines, ["'model.preset'", "cannot load", str(preset)], run_dir)


def test_run_dir_not_writable(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    root = _write_root(tmp_path / "data")
    run_dir = blocker / "run"
    code, lines = _run(["--config", str(TINY), "--data-dir", str(root), "--run-dir", str(run_dir)],
                       capsys)
    _assert_one_error(code, lines, ["run directory", str(run_dir), "not writable"], run_dir)


def test_run_dir_not_empty_is_left_alone(tmp_path, capsys):
    root = _write_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("mine")
    code, lines = _run(["--config", str(TINY), "--data-dir", str(root), "--run-dir", str(run_dir)],
                       capsys)
    assert code == 2 and "kemo did not write it" in lines[-1] and "--resume" not in lines[-1]
    assert sorted(p.name for p in run_dir.iterdir()) == ["keep.txt"]


def test_corpus_size():
    assert len(CSV_CASES) + len(CONFIG_CASES) + 3 >= 30


# Accepted by design -------------------------------------------------------------

def test_bom_and_mixed_line_endings_are_read(tmp_path):
    from kemo.data.brighter import read_track_a_csv

    lines = _good()
    mixed = "\ufeff" + lines[0] + "\r\n" + "\n".join(lines[1:20]) + "\r\n" + "\r\n".join(lines[20:])
    path = tmp_path / "eng.csv"
    path.write_bytes(mixed.encode("utf-8"))
    df = read_track_a_csv(path)
    assert list(df.columns) == HEADER.split(",") and len(df) == 40
    assert df["surprise"].isin(["0", "1"]).all()


def test_very_long_text_is_truncated_to_sequence_length(tmp_path):
    import keras_hub

    from kemo.data.pipeline import tokenize

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "word"]
    pre = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab), sequence_length=16)
    arrays = tokenize(["word " * 20000, "word"], pre)  # 100k characters
    assert arrays["token_ids"].shape == (2, 16)
    assert arrays["padding_mask"][0].sum() == 16 and arrays["padding_mask"][1].sum() == 3


# Untrusted files ------------------------------------------------------------------

def test_model_with_code_is_refused_by_safe_mode(tiny_run, tmp_path):
    """A model.keras carrying a Lambda (arbitrary Python) does not load."""
    import shutil

    import keras

    from kemo.errors import InputError
    from kemo.prediction.trained_run import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    inputs = keras.Input((3,))
    evil = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    evil.save(run / "model.keras")
    with pytest.raises(InputError, match="model.keras: cannot load model"):
        load_run(run)


def test_checkpoint_arrays_never_unpickle(tmp_path):
    """Checkpoints are read with numpy's allow_pickle=False: object arrays are refused."""
    import numpy as np

    import keras

    from kemo.training.checkpoint import _load_arrays

    path = tmp_path / "model.npz"
    np.savez(path, v00000=np.array([{"x": 1}], dtype=object))
    var = keras.Variable(np.zeros(1, "float32"))
    with pytest.raises(ValueError, match="allow_pickle"):
        _load_arrays(path, [var], "model")
