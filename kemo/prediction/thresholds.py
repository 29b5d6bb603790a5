"""Per-label decision thresholds, searched post hoc on held-out predictions.

For each label, the threshold maximising F1 on the precision-recall curve
(`sklearn.metrics.precision_recall_curve`) of the validation split's probabilities.
With several languages (`fit(..., langs=...)`) the global thresholds maximise instead
what the shared task ranks by, the mean over languages of each language's macro-F1:
label `j`'s threshold maximises `sum over languages l of F1_lj / labels(l)`, which
separates by label because a global threshold moves only its own label's F1.
Fit them on the validation split carved from train; report on dev: never fit
thresholds on the split they are scored on.

Per language (`thresholds.per_language = true`): each language's labels are tuned again
on that language's own validation rows; a label without a positive there (or one the
language lacks) keeps the global threshold, and a language without validation rows
(zero-shot) decides with the global thresholds. Decisions then need each row's
language: `apply(probs, langs)`; without `langs` every row gets the global thresholds.

One decision rule for the whole package: a label is predicted when its probability is
at or above its threshold (`decide`: `p >= t`, a tie is positive). One fallback: an
untuned run decides at `UNTUNED_THRESHOLD` (`ThresholdSearch.untuned(label_names)`).
`kemo.prediction.trained_run.Run.decide`, the training metric (`kemo.training.metrics.MacroF1`), the reports and
the exported SavedModel all decide this way.

Example:
    search = ThresholdSearch().fit(val_probs, val.labels, val.mask, val.label_names)
    decisions = search.apply(dev_probs)
    per_lang = search.tuned_per_language(val_probs, val.labels, val.mask, val.langs)
    decisions = per_lang.apply(dev_probs, dev.langs)
    per_lang.save(run_dir / "thresholds.json")
    ThresholdSearch.untuned(["calm", "tense"]).apply(np.array([[0.5, 0.49]]))  # [[1, 0]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kemo.run import json_files as rf

UNTUNED_THRESHOLD = 0.5  # every label's threshold when none was tuned


def decide(probs, thresholds) -> np.ndarray:
    """The decision rule: 1 where `probs >= thresholds` (broadcast), else 0 (int32),
    compared in float32 as the model computes probabilities (and as the exported
    SavedModel decides)."""
    return (np.asarray(probs, "float32") >= np.asarray(thresholds, "float32")).astype("int32")


@dataclass
class ThresholdSearch:
    """Per-label thresholds (`UNTUNED_THRESHOLD` until `fit`), with the validation F1
    each reached, and optionally per language (`per_language`: language -> one
    threshold per label)."""

    thresholds: list[float] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    val_f1: list[float] = field(default_factory=list)
    default: float = UNTUNED_THRESHOLD
    per_language: dict[str, list[float]] = field(default_factory=dict)
    # what thresholds.json says they were tuned on (data.validation = "dev": the dev split)
    fitted_on: str = "validation split of train"

    @classmethod
    def untuned(cls, label_names) -> "ThresholdSearch":
        """Every label at `UNTUNED_THRESHOLD`: what a run without tuning decides with."""
        names = list(label_names)
        return cls([UNTUNED_THRESHOLD] * len(names), names)

    def fit(self, probs, labels, mask, label_names, langs=None):
        """Global thresholds on validation; with `langs` of several languages, for the
        mean over languages of macro-F1 (`val_f1` stays each label's pooled F1)."""
        self.label_names = list(label_names)
        self.thresholds, self.val_f1, self.per_language = [], [], {}
        several = langs is not None and len(set(np.asarray(langs).tolist())) > 1
        for j in range(probs.shape[1]):
            known = mask[:, j] > 0
            t, f1 = best_f1_threshold(labels[known, j], probs[known, j], self.default)
            if several and labels[known, j].sum() > 0:
                t = best_language_mean_threshold(labels[:, j], probs[:, j], mask, langs, j)
                f1 = _f1_at(labels[known, j], probs[known, j], t)
            self.thresholds.append(t)
            self.val_f1.append(f1)
        return self

    def tuned_per_language(self, probs, labels, mask, langs) -> "ThresholdSearch":
        """A new search deciding per language: these global thresholds, plus each
        language of `langs` tuned on its own rows (a label without a positive among them
        keeps the global threshold)."""
        langs = np.asarray(langs)
        base = [float(t) for t in self.thresholds] or [self.default] * probs.shape[1]
        out = replace(self, thresholds=base, label_names=list(self.label_names),
                      val_f1=list(self.val_f1), per_language={})
        for lang in dict.fromkeys(langs.tolist()):
            rows = langs == lang
            ts = []
            for j, global_t in enumerate(base):
                known = rows & (mask[:, j] > 0)
                y = labels[known, j]
                ts.append(best_f1_threshold(y, probs[known, j], global_t)[0])
            out.per_language[str(lang)] = ts
        return out

    def global_only(self) -> "ThresholdSearch":
        """The same global thresholds, without the per-language ones."""
        return replace(self, per_language={})

    def row_thresholds(self, n: int, num_labels: int, langs=None) -> np.ndarray:
        """(n, labels) float32: each row's thresholds (its language's, else global)."""
        base = np.asarray(self.thresholds or [self.default] * num_labels, "float32")
        out = np.broadcast_to(base, (n, len(base))).copy()
        if langs is not None and self.per_language:
            langs = np.asarray(langs)
            if len(langs) != n:
                raise ValueError(f"{len(langs)} languages for {n} rows")
            for lang, ts in self.per_language.items():
                out[langs == lang] = np.asarray(ts, "float32")
        return out

    def apply(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions (`decide`: prob >= threshold) per label; with `langs` (one code
        per row) each row's language's thresholds where the search has them."""
        probs = np.asarray(probs)
        return decide(probs, self.row_thresholds(len(probs), probs.shape[1], langs))

    def to_dict(self) -> dict:
        d = {"label_names": self.label_names, "thresholds": self.thresholds,
             "val_f1": self.val_f1, "fitted_on": self.fitted_on}
        if self.per_language:
            d["per_language"] = self.per_language
        return d

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path, label_names=None, source: str = "", languages="track_a"):
        """Read and validate `thresholds.json`: one finite threshold in [0, 1] per label;
        with `label_names` (the run's own labels, read from `source`), its
        `label_names` must equal them. `per_language` (optional) maps language codes
        to one threshold per label: BRIGHTER codes (`languages="track_a"`), the codes
        of a list, or (None) any code (a table dataset with a language column)."""
        from kemo.data.brighter import check_language
        from kemo.errors import InputError

        d = rf.read_json(path)
        names = rf.label_names(rf.field(d, "label_names", path, list), path, "label_names",
                               label_names, source)
        thresholds = rf.numbers(rf.field(d, "thresholds", path, list), path, "thresholds",
                                len(names), 0.0, 1.0)
        val_f1 = rf.field(d, "val_f1", path, list, optional=True, default=[])
        if val_f1:
            rf.numbers(val_f1, path, "val_f1", len(names), 0.0, 1.0)
        per_language = {}
        for lang, ts in (rf.field(d, "per_language", path, dict, optional=True) or {}).items():
            if languages == "track_a":
                check_language(lang, rf.where(path, "per_language"))
            elif languages is not None and lang not in languages or not lang.strip():
                raise InputError(f"{rf.where(path, 'per_language')}: unknown language code "
                                 f"{lang!r} (the run's: {', '.join(languages or [])})")
            per_language[lang] = [float(t) for t in rf.numbers(
                ts, path, ("per_language", lang), len(names), 0.0, 1.0)]
        return cls([float(t) for t in thresholds], names, [float(f) for f in val_f1],
                   per_language=per_language)


def best_f1_threshold(y_true, probs, default: float = UNTUNED_THRESHOLD
                      ) -> tuple[float, float]:
    """(threshold, F1) maximising F1 on the PR curve (whose points decide `p >= t`, as
    `decide` does); `default` if no positives."""
    from sklearn.metrics import precision_recall_curve

    y_true = np.asarray(y_true)
    if y_true.size == 0 or y_true.sum() == 0:
        return default, 0.0
    precision, recall, thresholds = precision_recall_curve(y_true, probs)
    p, r = precision[:-1], recall[:-1]
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def _f1_at(y_true, probs, t: float) -> float:
    pred = decide(probs, t)
    tp, pp, p = float((pred * y_true).sum()), float(pred.sum()), float(np.sum(y_true))
    return 2 * tp / (pp + p) if pp + p else 0.0


def best_language_mean_threshold(y, probs, mask, langs, j: int) -> float:
    """Label `j`'s threshold maximising `sum_l F1_lj(t) / labels(l)` over the languages
    `l` of `langs` that annotate it (`labels(l)`: how many labels `l` annotates, so the
    sum is label `j`'s part of the mean over languages of macro-F1). Candidates are the
    distinct probabilities of known rows (`p >= t` decides); the lowest wins a tie."""
    langs, probs, y = np.asarray(langs), np.asarray(probs, "float32"), np.asarray(y)
    known = np.asarray(mask)[:, j] > 0
    candidates = np.unique(probs[known])
    score = np.zeros(len(candidates))
    for lang in dict.fromkeys(langs[known].tolist()):
        rows = langs == lang
        n_labels = int((np.asarray(mask)[rows] > 0).any(axis=0).sum())
        here = rows & known
        pos = np.sort(probs[here & (y > 0)])
        if len(pos) == 0:  # F1 is 0 whatever t is
            continue
        every = np.sort(probs[here])
        tp = len(pos) - np.searchsorted(pos, candidates, side="left")
        pp = len(every) - np.searchsorted(every, candidates, side="left")
        score += 2.0 * tp / (pp + len(pos)) / n_labels
    return float(candidates[int(np.argmax(score))])


def tune_on_validation(probs, val, tune: bool = True):
    """(global, per-language) searches fitted on the validation split `val` (an
    `Examples`): the per-language one falls back to the global thresholds; with
    `tune=False` the global thresholds are untuned (`ThresholdSearch.untuned`; the
    per-language ones are still tuned, for the report's comparison)."""
    if tune:
        search = ThresholdSearch().fit(probs, val.labels, val.mask, val.label_names,
                                       langs=val.langs)
    else:
        search = ThresholdSearch.untuned(val.label_names)
    return search, search.tuned_per_language(probs, val.labels, val.mask, val.langs)
