"""Scoring what a run predicts, and finishing a run: reports, the official scorer, the
report page.

- `kemo.evaluation.finish`: how a run ends (thresholds, report, predictions, `report.json`
  last), shared by training and ensembles.
- `kemo.evaluation.intensity_finish`: how an intensity (Track B) run ends: cut points,
  report, prediction files.
- `kemo.evaluation.migrate`: an older run's missing per-language settings, computed for
  `kemo report`'s page (report.json is not rewritten).
- `kemo.evaluation.classification_scores`: classification scores (per class, macro,
  micro, weighted, samples; per language and their mean): report.json's sections.
- `kemo.evaluation.result_text`: a run's results as plain text (console tables, the
  line a training ends with).
- `kemo.evaluation.intensity`: Track B: Pearson r per emotion and language, cut points
  (score -> intensity 0..K) tuned on validation, confusion tables.
- `kemo.evaluation.scoring`: the organisers' macro-F1 of `pred_<lang>.csv` files
  against gold files (`kemo evaluate`).
- `kemo.evaluation.split_probs`: a run's validation or dev probabilities, re-predicted
  or read back, for the report page.
- `kemo.evaluation.plots`, `kemo.evaluation.run_page`: the figures and the HTML page of
  `kemo report`.
"""
