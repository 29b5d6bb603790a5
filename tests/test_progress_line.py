"""The training progress a terminal shows: one line per epoch, at most the terminal's
width (80 to 160 columns), short names, no per-label losses, and no half-drawn bar left
above a compile note."""

import time

import keras
import numpy as np
import pytest

from kemo.training.monitor import CompileNotes, EpochProgress

LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
# What a six-label, several-language run logs at an epoch's end: 17 values.
LOGS = {"loss": 0.16244, "macro_f1": 0.29731, "val_loss": 0.13182, "val_macro_f1": 0.21443,
        "val_language_mean_f1": 0.20011, "learning_rate": 9.8e-05,
        **{f"loss_{n}": 0.2 for n in LABELS}, **{f"val_loss_{n}": 0.3 for n in LABELS}}


def screen(written: str) -> list[str]:
    """The lines a terminal shows for `written`: `\\r` returns to the line's start and
    later text overwrites earlier text (what a person sees after the run)."""
    lines = []
    for raw in written.split("\n"):
        shown = ""
        for part in raw.split("\r"):
            shown = part + shown[len(part):]
        lines.append(shown.rstrip())
    return lines[:-1] if written.endswith("\n") else lines


def _epoch(bar, logs, steps=10, epoch=0, slow_step=None):
    bar.on_epoch_begin(epoch)
    for batch in range(steps):
        bar.on_train_batch_begin(batch)
        time.sleep(0.3 if batch == slow_step else 0.001)
        bar.on_train_batch_end(batch, {k: logs[k] for k in ("loss", "macro_f1")})
    bar.on_epoch_end(epoch, logs)


def _bar(columns, epochs=12, steps=250, verbose=1):
    bar = EpochProgress(columns=columns, interval=0)
    bar.set_params({"verbose": verbose, "epochs": epochs, "steps": steps})
    return bar


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_every_line_fits_the_terminal_and_leaves_out_the_label_losses(columns, capsys):
    bar = _bar(columns, steps=10)
    _epoch(bar, LOGS, epoch=9)
    lines = screen(capsys.readouterr().out)
    assert len(lines) == 1, lines  # the running bar was overwritten by the closing line
    line = lines[0]
    assert len(line) < columns, line
    assert line.startswith("epoch 10/12 10/10 ")
    assert "| loss 0.1624 f1 0.2973 | val " in line and "lang_f1 0.2001" in line
    assert "anger" not in line and "loss_" not in line
    if columns >= 100:
        assert "val loss 0.1318 lang_f1 0.2001" in line
    if columns == 160:  # room for everything, the learning rate included
        assert "val loss 0.1318 lang_f1 0.2001 f1 0.2144 | lr 9.80e-05" in line
        assert "ms/step" in line


def test_a_one_language_run_keeps_its_validation_f1_at_80_columns(capsys):
    bar = _bar(80, epochs=20, steps=250)
    logs = {k: v for k, v in LOGS.items() if k != "val_language_mean_f1"}
    _epoch(bar, logs, steps=250, epoch=19)
    line = screen(capsys.readouterr().out)[0]
    assert len(line) < 80 and line.endswith("| val loss 0.1318 f1 0.2144"), line


def test_each_redraw_of_the_running_bar_fits_and_shows_the_running_values(capsys):
    bar = _bar(80, steps=250)
    bar.on_epoch_begin(0)
    for batch in range(3):
        bar.on_train_batch_begin(batch)
        bar.on_train_batch_end(batch, LOGS)
    draws = capsys.readouterr().out.split("\r")[1:]
    assert len(draws) == 3
    for d in draws:
        assert len(d.rstrip()) < 80 and "\n" not in d, d
        assert "[" in d and "eta" in d and "loss 0.1624 f1 0.2973" in d
        assert "val_" not in d  # validation runs after the steps
    assert draws[-1].startswith("epoch 1/12 3/250 [")


def test_a_log_file_gets_the_closing_line_only_without_a_width_limit(capsys):
    bar = _bar(None, verbose=2, steps=10)
    _epoch(bar, LOGS)
    out = capsys.readouterr().out
    assert "\r" not in out and out.count("\n") == 1
    assert "f1 0.2144 | lr 9.80e-05" in out and "loss_anger" not in out


def test_the_eta_does_not_count_a_compile_step(capsys):
    bar = _bar(120, steps=1000)
    bar.on_epoch_begin(0)
    for batch in range(6):
        bar.on_train_batch_begin(batch)
        time.sleep(0.5 if batch == 2 else 0.01)  # step 3 compiles a new bucket
        bar.on_train_batch_end(batch, {"loss": 1.0})
    last = capsys.readouterr().out.split("\r")[-1]
    eta = last.split(" eta ")[1].split()[0]  # 994 steps at the median ~0.01 s: ~10-20 s
    seconds = int(eta[:-1]) if eta.endswith("s") else 60 * int(eta.split(":")[0])
    assert seconds < 60, eta  # the mean step (~0.09 s) would say 1:30


class Buckets(keras.utils.PyDataset):
    """Batches of 4 rows padded to the lengths in `plan`."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, i):
        return np.zeros((4, self.plan[i]), "float32"), np.zeros((4, 1), "float32")


def test_a_real_fit_with_compile_notes_leaves_one_line_per_epoch_and_no_partial_bar(capsys):
    """Keras `fit` on a fake 80-column terminal: the compile notes come between the
    epoch lines, each whole; no half-drawn bar is left above or below them."""
    inputs = keras.Input((None,))
    x = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=1, keepdims=True))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("sgd", "mse")
    plan = [16, 16, 32, 16, 32, 64]
    bar = EpochProgress(columns=80, interval=0)
    notes = CompileNotes(bar=bar, bucket_of_step=lambda epoch, batch: plan[batch])
    model.fit(Buckets(plan), epochs=2, verbose=1, callbacks=[bar, notes])
    lines = screen(capsys.readouterr().out)
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"], lines
    assert all(ln.split()[2] == "6/6" and "[" not in ln for ln in epochs), lines  # closed
    others = [ln for ln in lines if not ln.startswith("epoch ")]
    assert others and all(ln.startswith(("compiling the train step", "length bucket"))
                          for ln in others), lines
    assert all(len(ln) < 80 for ln in lines)
