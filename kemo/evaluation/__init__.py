"""Scoring what a run predicts: thresholds, reports, the official scorer, the report page.

- `kemo.evaluation.thresholds`: per-label (and per-language) thresholds tuned on
  validation, and `decide`, the one decision rule (`p >= threshold`).
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
