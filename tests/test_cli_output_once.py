"""Every message of a `kemo` command appears once: on stdout (info) or stderr (notes,
errors), never on both. absl's first log call (TensorFlow writing a SavedModel) runs
`logging.basicConfig()`, and a root handler showed every line of `kemo export` a second
time as `INFO:kemo.serving.export:...` on stderr."""

import io
import logging
import subprocess
import sys

import kemo.log
from conftest import ROOT


def test_a_root_handler_does_not_show_kemo_lines_a_second_time(capsys):
    root_stream = io.StringIO()
    handler = logging.StreamHandler(root_stream)  # what logging.basicConfig() adds
    logging.root.addHandler(handler)
    try:
        kemo.log.to_console()
        logging.getLogger("kemo.serving.export").info("exported runs/tour")
        logging.getLogger("kemo.training").warning("note: a note")
    finally:
        logging.root.removeHandler(handler)
    out, err = capsys.readouterr()
    assert (out, err) == ("exported runs/tour\n", "note: a note\n")
    assert root_stream.getvalue() == ""


def _kemo(*args):
    proc = subprocess.run([sys.executable, "-m", "kemo.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_each_command_line_appears_once(tiny_run, tmp_path):
    runs = [_kemo("export", tiny_run, "--out", tmp_path / "export", "--no-benchmark"),
            _kemo("predict", tiny_run, "--text", "I can't stop smiling today"),
            _kemo("evaluate", tiny_run / "predictions" / "dev", "--split", "dev")]
    for out, err in runs:
        said = [ln for ln in out.splitlines() if ln.strip()]
        assert said, out
        assert not [ln for ln in err.splitlines() if ln.startswith(("INFO:", "WARNING:kemo"))], err
        assert not [ln for ln in said if ln in err], err
    assert "exported" in runs[0][0] and "SavedModel" in runs[0][0]
