"""Reading back what a training run wrote: model, preprocessor, thresholds, config.

Nothing is trusted: the run's label set comes from `label_distribution.json` (written
when training starts) and `thresholds.json`, `report.json` and the model's output
width must agree with it; every value is checked (`kemo.run.json_files`), and a fault is
one `InputError` naming the file and the field.

Example (`kemo.prediction.predictor.load_predictor` loads a run or an ensemble alike):
    run = load_run("runs/tiny-20261127-231500")
    probs = run.predict_probs(["I am so happy today!"])
    decisions = run.decide(probs, langs=["eng"])  # per language if the run has them
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kemo.run import json_files as rf
from kemo.config import Config, load_config
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.ensemble_file import ENSEMBLE_FILE, is_ensemble_dir, read_ensemble_file
from kemo.run.report_file import ABSENT, Report, Setting
from kemo.run.manifest import check_model_file
from kemo.run.json_files import where
from kemo.prediction.thresholds import ThresholdSearch

# Importing these registers the custom layers a saved model needs (it loads with
# compile=False: the losses and metrics of `kemo.training` are not needed).
from kemo.models import classifier as _classifier  # noqa: F401
from kemo.models import intensity_heads as _intensity_heads  # noqa: F401

THRESHOLDS, DISTRIBUTION, REPORT = L.THRESHOLDS, L.LABEL_DISTRIBUTION, L.REPORT


@dataclass
class Run:
    """A finished run: its directory, config, model, preprocessor and thresholds."""

    path: Path
    config: Config
    model: keras.Model
    preprocessor: object
    thresholds: ThresholdSearch
    # language -> the labels it was validated on (`report.json`); a submission for it
    # has these columns, whatever an input file's label columns
    language_labels: dict = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds.label_names)

    def decide(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions for `probs`: `p >= threshold` at the run's thresholds; with
        `langs` (one language code per row) at each language's own, where the run has
        them. The one decision every kemo command makes (`kemo.prediction.thresholds.decide`)."""
        return self.thresholds.apply(probs, langs)

    @property
    def model_file(self) -> Path:
        return self.path / L.MODEL

    def predict_probs(self, texts, batch_size: int = 64, rows=None, langs=None) -> np.ndarray:
        """Sigmoid probabilities, shape (len(texts), num_labels); a non-finite one is an
        InputError naming the model file and the first bad row (`rows`: each row's
        description, default `text <i>`). `langs` (each row's language) is taken for the
        interface an ensemble shares (`kemo.prediction.ensemble_run.EnsembleRun`); one
        model ignores it."""
        from kemo.data.pipeline import tokenize
        from kemo.finite import check_probs
        from kemo.prediction.batches import predict_probs

        arrays = tokenize([str(t) for t in texts], self.preprocessor)
        if self.intensity:
            probs = self.intensity_scores(arrays, batch_size)
        else:
            probs = predict_probs(self.model, arrays, batch_size,
                                  self.config.data.length_buckets)
        return check_probs(probs, self.model_file, rows, self.label_names)

    @property
    def intensity(self) -> bool:
        """Whether the run predicts intensities 0..K (Track B): `predict_probs` then
        returns the continuous intensity and `decide` the integers its cut points give."""
        return self.config.data.label_kind == "intensity"

    def intensity_scores(self, arrays, batch_size: int, tf_data=None) -> np.ndarray:
        from kemo.models.intensity_heads import intensity_scores
        from kemo.prediction.batches import predict_logits

        out = predict_logits(self.model, arrays, batch_size, self.config.data.length_buckets,
                             tf_data)
        return np.asarray(intensity_scores(out), dtype="float32")

    def predict(self, texts, batch_size: int = 64, langs=None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, `decide`'s 0/1 decisions)."""
        probs = self.predict_probs(texts, batch_size)
        return probs, self.decide(probs, langs)

    def predict_tokens(self, arrays, batch_size: int = 64,
                       langs=None, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """As `predict`, for texts tokenised already by this run's tokenizer (padded
        arrays from a `kemo.data.token_cache`): numpy batches, no TensorFlow."""
        from kemo.finite import check_probs
        from kemo.prediction.batches import predict_probs

        probs = (self.intensity_scores(arrays, batch_size, tf_data=False) if self.intensity
                 else predict_probs(self.model, arrays, batch_size,
                                    self.config.data.length_buckets, tf_data=False))
        check_probs(probs, self.model_file, rows, self.label_names)
        return probs, self.decide(probs, langs)


@dataclass
class RunState:
    """A run directory's own records, validated against each other (no model loaded).

    `label_names` is the run's label set, from `label_distribution.json` (written when
    training starts); `thresholds.json` and `report.json` must agree with it.
    """

    path: Path
    config: Config
    label_names: list[str] | None
    distribution: dict | None
    thresholds: ThresholdSearch | None
    report: Report | None


def read_run_state(run_dir, finished: bool = True) -> RunState:
    """Read and cross-check `config.toml`, `label_distribution.json`, `thresholds.json`
    and `report.json`; with `finished`, all but `report.json` must exist."""
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"run directory {path}: not found")
    ensemble = (path / ENSEMBLE_FILE).is_file()  # its labels: ensemble.json's
    owner = ENSEMBLE_FILE if ensemble else DISTRIBUTION
    if not (path / L.CONFIG).exists():
        raise InputError(f"run directory {path}: missing {L.CONFIG} (not a finished kemo run)")
    try:
        config = load_config(path / L.CONFIG)
    except InputError as e:
        where_ = str(path / L.CONFIG)
        raise InputError(str(e) if where_ in str(e) else f"{where_}: {e}") from None
    decisions = decision_file(config)
    needed = [owner, decisions] if finished else []
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        raise InputError(f"run directory {path}: missing {', '.join(missing)} "
                         "(not a finished kemo run)")
    dist = names = None
    if ensemble:
        names = read_ensemble_file(path)["label_names"]
    elif (path / DISTRIBUTION).exists():
        dist = read_label_distribution(path / DISTRIBUTION)
        names = dist["labels"]
    thresholds = None
    if decisions == L.CUT_POINTS:  # an intensity run: its cut points decide
        if (path / L.CUT_POINTS).exists():
            thresholds = read_cut_points(path / L.CUT_POINTS, names)
        report = Report.read(path, names) if (path / REPORT).exists() else None
        return RunState(path, config, names, dist, thresholds, report)
    if (path / THRESHOLDS).exists():
        thresholds = ThresholdSearch.load(path / THRESHOLDS, names, path / owner,
                                          _threshold_languages(config))
        names = names or thresholds.label_names
    report = Report.read(path, names) if (path / REPORT).exists() else None
    if thresholds is not None:
        check_per_language(path / THRESHOLDS, thresholds, config, report)
    return RunState(path, config, names, dist, thresholds, report)


def decision_file(config: Config) -> str:
    """The file a run decides with: `cut_points.json` (intensity runs) or `thresholds.json`."""
    return L.CUT_POINTS if config.data.label_kind == "intensity" else THRESHOLDS


def read_cut_points(path, label_names):
    """An intensity run's `cut_points.json` (`kemo.prediction.cut_points.CutPoints`),
    checked: one ordered row of K finite numbers per label of the run."""
    from kemo.prediction.cut_points import CutPoints

    d = rf.read_json(path)
    k = rf.number(d, ("max_intensity",), path, 1, integer=True)
    table = rf.field(d, ("cut_points",), path, dict)
    if label_names is not None and list(table) != list(label_names):
        raise InputError(f"{where(path, 'cut_points')}: labels {', '.join(table)}, the run's "
                         f"are {', '.join(label_names)}")
    for name in table:
        row = rf.numbers(table[name], path, ("cut_points", name), k)
        if any(b < a for a, b in zip(row, row[1:])):
            raise InputError(f"{where(path, ('cut_points', name))}: cut points not in "
                             f"increasing order ({row})")
    return CutPoints.from_dict(d)


def _threshold_languages(config: Config):
    """Which language codes a run's thresholds.json may name: Track A's ("track_a"), a
    table dataset's code(s), or None (any: a language column)."""
    if config.data.layout == "track_a":
        return "track_a"
    from kemo.data.dataset import trained_languages

    return trained_languages(config)


def _run_languages(config: Config, thresholds: ThresholdSearch) -> list[str]:
    """The languages a run trained on: its config's (`trained_languages`); a table
    dataset with a language column: those its thresholds.json tuned."""
    from kemo.data.dataset import trained_languages

    langs = trained_languages(config)
    return list(thresholds.per_language) if langs is None else langs


def check_per_language(path, thresholds: ThresholdSearch, config: Config,
                       report: Report | None) -> None:
    """A run that decides per language (report.json's `meta.decides_with`, else the
    config's `thresholds.per_language` with `tune`) must find every language it tuned
    in `thresholds.json`'s `per_language`: one missing would silently be decided with
    the global thresholds."""
    if report is not None and report.meta.decides_with is not ABSENT:
        if report.meta.decides_with != Setting.PER_LANGUAGE:
            return
        tuned = report.meta.per_language_thresholds
        trained = _run_languages(config, thresholds)  # others: zero-shot, globally
        expected = [lang for lang in tuned if lang in trained] if isinstance(tuned, dict) \
            else trained
        why = f"{where(path.parent / REPORT, 'meta.decides_with')} says it decides per language"
    elif config.thresholds.per_language and config.thresholds.tune:
        expected = _run_languages(config, thresholds)
        why = "its config.toml sets thresholds.per_language = true"
    else:
        return
    have = thresholds.per_language
    missing = [lang for lang in dict.fromkeys(expected) if lang not in have]
    if missing:
        what = ("has no per_language table" if not have
                else f"lacks {', '.join(missing)} in its per_language table")
        raise InputError(f"{where(path, 'per_language')}: the run {what}, but {why}: "
                         f"{', '.join(missing)} would be decided with the global thresholds "
                         "(restore thresholds.json, or train again)")


def load_run(run_dir) -> Run:
    """Load a run directory written by `kemo.training.train` (Keras safe mode on). An
    ensemble's is loaded by `kemo.prediction.predictor.load_predictor`, which takes either.

    Every file is validated first (`read_run_state`); the model must output one logit
    per label of the run.
    """
    import keras_hub  # noqa: F401  (registers the preprocessor classes)

    path = Path(run_dir)
    if is_ensemble_dir(path):
        raise InputError(f"run directory {path}: an ensemble ({L.ENSEMBLE}), not one "
                         "trained run (load it with kemo.prediction.predictor.load_predictor)")
    if path.is_dir():
        missing = [n for n in (L.CONFIG, L.MODEL, DISTRIBUTION,
                               L.PREPROCESSOR) if not (path / n).exists()]
        if missing:
            raise InputError(f"run directory {path}: missing {', '.join(missing)} "
                             "(not a finished kemo run)")
    state = read_run_state(path)
    _check_zip(path / L.MODEL)
    try:
        model = keras.models.load_model(path / L.MODEL, compile=False, safe_mode=True)
    except Exception as e:
        raise InputError(f"{path / L.MODEL}: cannot load model "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from None
    from kemo.finite import check_weights

    check_weights(model, path / L.MODEL)  # a NaN weight would decide "no emotion"
    # (rows, labels), or an ordinal intensity head's (rows, labels, K)
    width = model.output_shape[1] if isinstance(model.output_shape, tuple) else None
    if width != len(state.label_names):
        raise InputError(f"{path / L.MODEL}: the model outputs {width} values per text, "
                         f"{where(path / DISTRIBUTION, 'labels')} lists "
                         f"{len(state.label_names)} labels")
    check_model_file(path)  # the model file this run wrote, not one copied in
    if state.config.model.fused_attention:  # not kept by model.keras: as in training
        from kemo.models.backbone_layers import use_fused_attention

        use_fused_attention(model)
    preprocessor = _load_preprocessor(path / L.PREPROCESSOR)
    return Run(path, state.config, model, preprocessor, state.thresholds,
               state.report.language_labels() if state.report else {})


def _check_zip(path: Path) -> None:
    """A `.keras` file is a zip: every member must read back (CRC checked)."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"{path}: not a readable .keras file "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from None
    if bad is not None:
        raise InputError(f"{path}: damaged (member {bad} fails its CRC check)")


def read_label_distribution(path) -> dict:
    """`label_distribution.json`: the run's labels (kemo's order) and their positive
    rates before and after sampling."""
    d = rf.read_json(path)
    names = rf.label_names(rf.field(d, "labels", path, list), path, "labels")
    for key in ("before", "after"):
        rf.numbers(rf.field(d, key, path, list), path, key, len(names), 0.0, 1.0)
    rf.number(d, "sampling_strength", path, lo=0.0, optional=True)
    return d


def _load_preprocessor(preset: Path):
    """The preprocessor saved by `save_to_preset` (preprocessor.json + assets/).

    `TextClassifierPreprocessor.from_preset` needs the backbone's config.json, which a
    run directory does not hold, so the layer is deserialised directly (the one loader,
    shared with token caches: `kemo.data.token_cache.load_preset_preprocessor`).
    """
    from kemo.data.token_cache import load_preset_preprocessor

    return load_preset_preprocessor(preset)

