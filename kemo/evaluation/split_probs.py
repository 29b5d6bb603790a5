"""A finished run's probabilities on its own validation and dev splits, after the fact.

`validation_probs` reloads the run, re-creates its validation split exactly as training
did (`kemo.data.splits.load_data`: same config, same seed) and predicts it, checking
that it reproduces report.json's validation rows and macro-F1. `dev_probs` needs no
model: it reads `predictions_dev.csv` (probabilities rounded to 6 decimals) with the
dev labels. `kemo report` draws its precision-recall curves from them and fills the
per-language comparison of runs trained before it (`kemo.evaluation.migrate`).

Example:
    val = validation_probs("runs/tiny", data_dir="../shared/data/brighter/track_a")
    val.reproduced, val.probs.shape, val.langs[:3]
    data, why = available_probs("runs/tiny")  # validation, else dev, else (None, why)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kemo.config import load_config
from kemo.data.brighter import Examples
from kemo.errors import InputError
from kemo.evaluation.classification_scores import classification_report
from kemo.prediction.predictor import load_predictor, validation_examples
from kemo.run import layout as L
from kemo.run.manifest import recorded_data_dir
from kemo.run.report_file import (
    ABSENT, F1, MACRO, N, OVERALL, PER_LABEL, PER_LANGUAGE, PRECISION, RECALL, SUPPORT,
    VALIDATION, Report, Setting,
)

NOISE = 1e-5  # how far a reloaded model's probabilities may move from training's


@dataclass
class SplitProbs:
    """Probabilities, gold labels and mask of one split (`examples`, aligned to the
    run's labels), with a note on where they came from."""

    split: str  # "validation" or "dev"
    label_names: list[str]
    probs: np.ndarray
    examples: Examples
    note: str = ""
    reproduced: bool = False  # validation: same rows and macro-F1 as report.json
    decisions: np.ndarray | None = None  # dev: the 0/1 columns the run wrote

    @property
    def labels(self) -> np.ndarray:
        return self.examples.labels

    @property
    def mask(self) -> np.ndarray:
        return self.examples.mask

    @property
    def langs(self) -> np.ndarray:
        return self.examples.langs


def validation_probs(run_dir, data_dir=None) -> SplitProbs:
    """Reload the run, re-create its validation split as training did, predict it."""
    val = validation_examples(run_dir, data_dir)  # fails fast: no model loaded yet
    run = load_predictor(run_dir)
    names = run.label_names
    if list(val.label_names) != names:
        raise InputError(f"run directory {run_dir}: the re-created validation split has labels "
                         f"{', '.join(val.label_names)}, the run {', '.join(names)}")
    probs = run.predict_probs(val.texts, run.config.train.batch_size, langs=val.langs)
    note = f"{len(val)} rows re-created from the config and seed"
    reproduced = False
    try:
        report = Report.read(run_dir, names)
        expected = report.section(VALIDATION, Setting.GLOBAL)
    except (OSError, InputError):
        return SplitProbs("validation", names, probs, val, note, reproduced)
    if expected is None:
        return SplitProbs("validation", names, probs, val, note, reproduced)
    got = classification_report(val.labels, run.decide(probs), val.mask,
                                names)[MACRO][F1]  # global thresholds, as reported
    rows = report.meta.val_rows if report.meta.val_rows is not ABSENT else len(val)
    differs = (f"{len(val)} rows, report.json {rows}" if rows != len(val) else
               report_mismatch(expected, val, probs, run.thresholds.global_only()))
    if differs:
        note += (f"; WARNING: does not reproduce training's validation split ({differs}; "
                 f"macro-F1 {got:.4f}, report.json {expected[OVERALL][MACRO][F1]:.4f})")
    else:
        note += (f" (checked: same rows and macro-F1 {got:.4f} as report.json)"
                 if abs(got - expected[OVERALL][MACRO][F1]) <= 1e-6 else
                 f" (checked: same rows, label counts and decisions within {NOISE:g} of "
                 f"report.json's; macro-F1 {got:.4f}, report.json "
                 f"{expected[OVERALL][MACRO][F1]:.4f}: a row at a threshold moved by "
                 "the re-prediction's float noise)")
        reproduced = True
    return SplitProbs("validation", names, probs, val, note, reproduced)


def report_mismatch(expected: dict, val: Examples, probs, thresholds, delta: float = None):
    """None if `val` and `probs` agree with `expected` (report.json's validation
    `tuned_thresholds` setting): the same rows per language and positives per label, and
    each label's true and predicted positives at `thresholds` within what moving the
    probabilities by `delta` allows (a reloaded model re-predicts to ~1e-6, and a tuned
    threshold is one row's probability); else what differs."""
    delta = NOISE if delta is None else delta
    for lang, r in expected.get(PER_LANGUAGE, {}).items():
        if int((val.langs == lang).sum()) != r.get(N):
            return f"{lang}: {int((val.langs == lang).sum())} rows, report.json {r.get(N)}"
    t = thresholds.row_thresholds(1, probs.shape[1])[0].astype("float64")
    for j, name in enumerate(val.label_names):
        known = val.mask[:, j] > 0
        r = expected[OVERALL][PER_LABEL].get(name)
        if r is None:
            if known.any():
                return f"{name}: known in the split, absent from report.json"
            continue
        y, p = val.labels[known, j] > 0, probs[known, j].astype("float64")
        if int(y.sum()) != r[SUPPORT]:
            return f"{name}: {int(y.sum())} positives, report.json {r[SUPPORT]}"
        surely, maybe = p >= t[j] + delta, p >= t[j] - delta
        tp = round(r[RECALL] * r[SUPPORT])
        if not int((surely & y).sum()) <= tp <= int((maybe & y).sum()):
            return f"{name}: true positives differ"
        if r[PRECISION] > 0 and not int(surely.sum()) <= round(tp / r[PRECISION]) \
                <= int(maybe.sum()):
            return f"{name}: predicted positives differ"
    return None


def dev_probs(run_dir, data_dir=None) -> SplitProbs:
    """Dev probabilities and the run's 0/1 decisions from `predictions_dev.csv`, with
    the dev labels (no model needed)."""
    import pandas as pd

    from kemo.data.dataset import open_dataset, read_available
    from kemo.data.examples import align_labels

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / L.CONFIG)
    path = run_dir / L.PREDICTIONS_DEV
    if not path.is_file():
        raise InputError(f"{path}: not found (the run had no dev split)")
    pred = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    names = [c[2:] for c in pred.columns if c.startswith("p_")]
    dev = read_available(open_dataset(cfg.data, data_dir, recorded_data_dir(run_dir)),
                         "dev")  # as training scored it
    if dev is None:
        raise InputError(f"{path}: the run's data has no dev split to score it against")
    if list(dev.ids) != pred["id"].tolist():
        raise InputError(f"{path}: its ids differ from the dev files' ids")
    try:
        probs = pred[[f"p_{n}" for n in names]].to_numpy("float32")
        decisions = pred[names].to_numpy("int32") if set(names) <= set(pred.columns) else None
    except ValueError as e:
        raise InputError(f"{path}: a probability or decision column is not numeric ({e})"
                         ) from None
    return SplitProbs("dev", names, probs, align_labels(dev, names),
                      f"{len(dev)} rows from {path.name}", decisions=decisions)


def available_probs(run_dir, data_dir=None) -> tuple[SplitProbs | None, str]:
    """Validation probabilities if the split can be re-created, else dev, else None;
    plus why not."""
    try:
        return validation_probs(run_dir, data_dir), ""
    except InputError as e:
        why = f"validation split not available ({e})"
    try:
        data = dev_probs(run_dir, data_dir)
        data.note = f"{data.note}; {why}"
        return data, ""
    except InputError as e:
        return None, f"{why}; dev split not available either ({e})"
