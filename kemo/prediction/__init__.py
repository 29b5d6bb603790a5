"""Predicting: the interface every predicting command takes, and files in and out.

- `kemo.prediction.predictor`: `Predictor` (a trained run or an ensemble) and
  `load_predictor(run_dir)`.
- `kemo.prediction.batches`: a Keras model's probabilities for token arrays, batched by
  length bucket.
- `kemo.prediction.files`: `kemo predict` on files: input files read and checked,
  `pred_<lang>.csv` / `probs_<lang>.csv` and the submission zip written.
- `kemo.prediction.split_files`: a split's rows with gold, probabilities and decisions
  (`predictions_val.csv`, `predictions_dev.csv`, `predictions/<split>/`).
"""
