"""Messages that do not mislead, and limits checked before anything is written (issue 20):
upper bounds on every config number that sizes memory, refused before the run directory
exists; an unknown --set key blamed on --set; --run-dir naming a file; a bogus
$KERAS_BACKEND; all one `error:` line, exit 2."""

import os
import subprocess
import sys

import pytest

from _reliability import kemo, refused
from conftest import ROOT

TINY = ROOT / "configs" / "tiny.toml"


@pytest.mark.parametrize("setting", [
    "model.sequence_length=100000", "train.batch_size=10000000", "model.hidden_dim=100000",
    "model.intermediate_dim=1000000", "model.num_layers=1000", "model.num_heads=1000",
    "model.vocabulary_size=100000000", "data.length_buckets=[32, 100000]"])
def test_memory_sizing_numbers_have_upper_bounds(setting, tmp_path):
    run = tmp_path / "run"
    rc, _, err = kemo("train", "--config", TINY, "--set", setting, "--run-dir", run)
    key = setting.split("=")[0]
    refused(rc, err, f"'{key}'", "expected a value in")
    assert not run.exists()


def test_unknown_set_key_is_blamed_on_set(tmp_path):
    rc, _, err = kemo("train", "--config", TINY, "--set", "train.epoch=1",
                      "--run-dir", tmp_path / "run")
    line = refused(rc, err, "--set 'train.epoch=1'", "unknown config key", "epochs")
    assert str(TINY) not in line
    rc, _, err = kemo("train", "--config", TINY, "--set", "nosuch.key=1",
                      "--run-dir", tmp_path / "run")
    line = refused(rc, err, "--set 'nosuch.key=1'", "unknown config section", "'nosuch'")
    assert str(TINY) not in line


def test_run_dir_that_is_a_file_does_not_suggest_resume(tmp_path, data_dir):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    rc, _, err = kemo("train", "--config", TINY, "--run-dir", f)
    line = refused(rc, err, f, "is a file")
    assert "--resume" not in line
    assert f.read_text() == "mine"


@pytest.mark.parametrize("argv", [["evaluate", "x"], ["predict", "x", "--text", "hi"],
                                  ["weights", "list"]])
def test_bogus_keras_backend_is_one_line(argv):
    env = {**os.environ, "KERAS_BACKEND": "bogus"}
    proc = subprocess.run([sys.executable, "-m", "kemo.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    refused(proc.returncode, proc.stderr, "$KERAS_BACKEND='bogus'", "jax")


def test_backend_option_overrides_a_bogus_environment(tiny_run, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "bogus")
    with pytest.raises(SystemExit) as e:
        kemo("evaluate", tiny_run / "predictions" / "dev")
    assert e.value.code == 2
    rc, out, err = kemo("predict", tiny_run, "--text", "I am so happy", "--backend", "jax")
    assert rc == 0, err
