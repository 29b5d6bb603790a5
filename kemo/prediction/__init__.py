"""Predicting: a trained run loaded, the interface every predicting command takes, and
files in and out.

- `kemo.prediction.predictor`: `Predictor` (a trained run or an ensemble) and
  `load_predictor(run_dir)`.
- `kemo.prediction.trained_run`: a trained run read back (`load_run`, `read_run_state`,
  `Run`); loads Keras when it is imported.
- `kemo.prediction.thresholds`: per-label (and per-language) thresholds tuned on
  validation, and `decide`, the one decision rule (`p >= threshold`).
- `kemo.prediction.batches`: a Keras model's probabilities for token arrays, batched by
  length bucket.
- `kemo.prediction.input_files`: `kemo predict` on input files: read and checked,
  `pred_<lang>.csv` / `probs_<lang>.csv` and the submission zip written.
- `kemo.prediction.split_files`: a split's rows with gold, probabilities and decisions
  (`predictions_val.csv`, `predictions_dev.csv`, `predictions/<split>/`).
- `kemo.prediction.dataset_files`: a table dataset's rows with their predictions.
"""
