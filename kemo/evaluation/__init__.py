"""Scoring what a run predicts, and finishing a run: reports, the official scorer, the
report page.

- `kemo.evaluation.finish`: how a run ends (thresholds, report, predictions, `report.json`
  last), shared by training and ensembles.
- `kemo.evaluation.intensity_finish`: how an intensity (Track B) run ends: cut points,
  report, prediction files.
- `kemo.evaluation.migrate`: older runs' `report.json` completed to today's format (backfill).
- `kemo.evaluation.report`: classification reports (per class, macro, micro, weighted,
  samples; per language and their mean), as dicts and as text.
- `kemo.evaluation.intensity`: Track B: Pearson r per emotion and language, cut points
  (score -> intensity 0..K) tuned on validation, confusion tables.
- `kemo.evaluation.scoring`: the organisers' macro-F1 of `pred_<lang>.csv` files
  against gold files (`kemo evaluate`).
- `kemo.evaluation.split_probs`: a run's validation or dev probabilities, re-predicted
  or read back, for the report page.
- `kemo.evaluation.plots`, `kemo.evaluation.page`: the figures and the HTML page of
  `kemo report`.
"""
