"""Ctrl-C stops a command even where Keras swallows the KeyboardInterrupt.

Keras' `pythonify_logs` converts every batch's logs inside a bare `except: pass`; a
Ctrl-C landing there was lost and a run finished with exit 0 (seen in CI as
test_resume's Ctrl-C case exiting 0 with a full report, 4 times in 6 locally).
"""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras.src.utils.python_utils import pythonify_logs

from conftest import ROOT, with_sigint
from kemo.interrupt import ReraiseInterrupt, catch_interrupts, interrupt_requested


@pytest.fixture(autouse=True)
def _terminal_sigint(restore_sigint):
    """Each test starts with Python's SIGINT handler, as in a terminal, even when the
    suite was started with SIGINT ignored (a background job, nohup, a job runner)."""


class CtrlCOnFloat:
    """A log value whose conversion to float delivers SIGINT, as a Ctrl-C pressed while
    Keras waits in `float(value)` for a step's result."""

    def __float__(self):
        signal.raise_signal(signal.SIGINT)
        return 0.0


class CtrlCInsideKeras(keras.callbacks.Callback):
    def __init__(self, at_batch):
        super().__init__()
        self.at_batch, self.batches = at_batch, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.at_batch:
            pythonify_logs({"probe": CtrlCOnFloat()})  # Keras' own code swallows it


def _fit(callbacks):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((64, 3), "float32"), np.zeros((64, 1), "float32")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks)


def test_keras_swallows_a_ctrl_c_in_its_log_conversion():
    """The premise: without kemo's handler the interrupt vanishes inside Keras."""
    probe = CtrlCInsideKeras(at_batch=3)
    _fit([probe])  # no KeyboardInterrupt escapes
    assert probe.batches == 16


def test_swallowed_ctrl_c_stops_fit_at_the_next_batch_end():
    probe = CtrlCInsideKeras(at_batch=3)
    with catch_interrupts():
        with pytest.raises(KeyboardInterrupt):
            _fit([probe, ReraiseInterrupt()])
        assert interrupt_requested()
    assert probe.batches == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class CtrlCInCallback(keras.callbacks.Callback):
    """Ctrl-C pressed `presses` times while batch `at_batch` ends."""

    def __init__(self, at_batch, presses=1):
        super().__init__()
        self.at_batch, self.presses, self.batches, self.after_signal = at_batch, presses, 0, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.at_batch:
            for _ in range(self.presses):
                signal.raise_signal(signal.SIGINT)
            self.after_signal += 1  # reached: the first Ctrl-C waits for the batch end


def test_first_ctrl_c_in_fit_waits_for_the_batch_end_and_the_second_raises_at_once():
    with catch_interrupts():
        once = CtrlCInCallback(at_batch=2)
        with pytest.raises(KeyboardInterrupt):
            _fit([once, ReraiseInterrupt()])
        assert (once.batches, once.after_signal) == (2, 1)

    with catch_interrupts():
        twice = CtrlCInCallback(at_batch=2, presses=2)
        with pytest.raises(KeyboardInterrupt):
            _fit([twice, ReraiseInterrupt()])
        assert (twice.batches, twice.after_signal) == (2, 0)
        # Outside fit nothing is held: a Ctrl-C raises where it lands.
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def test_cli_exits_130_when_a_library_swallowed_the_ctrl_c(monkeypatch, capsys):
    from kemo import cli

    def swallowing_main(args):
        try:
            signal.raise_signal(signal.SIGINT)
        except:  # noqa: E722  as Keras does
            pass
        return 0

    monkeypatch.setattr(cli.COMMANDS["weights"], "main", swallowing_main)
    assert cli.main(["weights", "list"]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.undo()  # the flag resets on the next command
    assert cli.main(["weights", "list"]) == 0
    assert not interrupt_requested()


def test_an_inherited_ignored_sigint_stays_ignored():
    """kemo follows the POSIX convention: a process started with SIGINT ignored (`nohup`,
    `cmd &` in a script) keeps ignoring it, so a terminal's Ctrl-C does not stop a
    background run; `kill -TERM` (or SIGKILL, then `--resume`) stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with catch_interrupts():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: nothing raised, nothing recorded
        assert not interrupt_requested()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.skipif(os.environ.get("KEMO_INTERRUPT_CHILD") != "1", reason="the child's check")
def test_the_child_really_started_with_sigint_ignored():
    import conftest

    assert conftest.SIGINT_AT_START is signal.SIG_IGN


@pytest.mark.skipif(os.environ.get("KEMO_INTERRUPT_CHILD") == "1", reason="the child itself")
def test_these_tests_pass_when_the_suite_starts_with_sigint_ignored():
    """This file again, in a child started with SIGINT ignored (as a CI job runner or
    `nohup python -m pytest` starts it): every test passes there too."""
    child = subprocess.run(
        with_sigint([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                     str(ROOT / "tests" / "test_interrupt.py")], "ignore"),
        cwd=ROOT, env={**os.environ, "KEMO_INTERRUPT_CHILD": "1"}, capture_output=True,
        text=True, timeout=300)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
    assert " passed" in child.stdout and "failed" not in child.stdout, child.stdout[-2000:]
    assert "6 passed, 1 skipped" in child.stdout, child.stdout[-2000:]  # its own check ran
