"""Every file and folder name of a run directory, defined once.

Other modules import these names (`from kemo.run import layout as L; run_dir / L.REPORT`)
instead of spelling the literal, so a name has one owner; `tests/test_run_layout.py`
scans kemo's source for a literal outside this module. `FILES` says in one line what
each one is (the manifest, `run.json`, lists them).

Example:
    from kemo.run import layout as L
    finished = (run_dir / L.REPORT).is_file()   # report.json is written last
"""

from __future__ import annotations

CONFIG = "config.toml"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
LABEL_DISTRIBUTION = "label_distribution.json"
THRESHOLDS = "thresholds.json"
CUT_POINTS = "cut_points.json"  # intensity runs (Track B) instead of thresholds.json
REPORT = "report.json"
PREDICTIONS_VAL = "predictions_val.csv"
PREDICTIONS_DEV = "predictions_dev.csv"
PREDICTIONS = "predictions"  # predictions/<split>/pred_<lang>.csv (+ probs_, a zip)
MODEL = "model.keras"
PREPROCESSOR = "preprocessor"
TOKENS = "tokens"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
ENSEMBLE = "ensemble.json"
VOCABULARY_KEEP = "vocabulary_keep.npy"
MANIFEST = "run.json"
REPORT_DIR = "report"  # kemo report's default output folder
EXPORT_DIR = "export"  # kemo export's default output folder
TENSORBOARD = "tensorboard"
EXPLANATIONS = "explanations"  # kemo explain's default output folder

# name -> what it is, in the order a run writes them (run.json's "files").
FILES = {
    LOCK: "lock held by the process writing this run (pid inside)",
    MANIFEST: "this manifest: command, times, versions, machine, files",
    CONFIG: "the config the run was trained with (kemo train --config)",
    VOCABULARY_KEEP: "token ids kept by model.prune_vocabulary (resume rebuilds the shapes)",
    TOKENS: "token cache of train/validation/dev (resume reads it back)",
    LABEL_DISTRIBUTION: "positive rate per label before and after sampling; the run's labels",
    HISTORY_CSV: "metrics per epoch (Keras CSVLogger)",
    HISTORY_JSON: "metrics per epoch (one JSON object each)",
    CHECKPOINTS: "per-epoch checkpoints for --resume (removed when the run finishes)",
    TENSORBOARD: "TensorBoard event files",
    ENSEMBLE: "the member runs and weights of an ensemble",
    THRESHOLDS: "decision thresholds (tuned on validation, or 0.5)",
    CUT_POINTS: "intensity runs: per-label cut points score -> 0..K (tuned on validation)",
    PREDICTIONS_VAL: "validation rows: gold, probabilities and decisions",
    PREDICTIONS_DEV: "dev rows: gold, probabilities and decisions",
    PREDICTIONS: "submission files per split (pred_<lang>.csv, probs_<lang>.csv, zip)",
    MODEL: "the trained model without optimizer state",
    PREPROCESSOR: "the tokenizer/preprocessor the model reads text with",
    REPORT: "validation and dev scores; written last: marks a finished run",
    REPORT_DIR: "kemo report's HTML report",
    EXPORT_DIR: "kemo export's serving export",
    EXPLANATIONS: "kemo explain's outputs",
}
