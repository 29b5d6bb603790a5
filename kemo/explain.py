"""LIME explanations of a run's predictions: which words push each label up or down.

For one text: the labels predicted at the run's tuned thresholds and, for each of them
(or the most probable label when none passes its threshold), the words LIME finds
pushing towards (positive weight) and away from (negative weight) that label. LIME
perturbs the text by dropping words and fits a local linear model per label on the
model's sigmoid probabilities (multi-label: each column on its own, as-is). All
`num_samples` perturbations go through the model in one `predict_probs` call.

Saved per text: `<id>.html` (kemo's page, `kemo.explain_page`: the text, every label's
probability against its threshold, and per explained label the words as the model's
tokenizer saw them coloured by weight; a few kilobytes, no script) and `<id>.png` (a bar
chart per explained label); `explanations.json` sums them up.

Example:
    run = load_predictor("runs/tiny")   # kemo.prediction.predictor: a run or an ensemble
    ex = explain_text(run, "I can't stop smiling today", num_samples=500)
    ex.predicted, ex.words[ex.predicted[0]][:3]      # [('smiling', 0.21), ...]
    save_explanation(ex, "runs/tiny/explanations")
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kemo.atomic import atomic_path, write_text
from kemo.errors import InputError
from kemo.explain_page import explanation_page
from kemo.owned_dir import OwnedDir

# `kemo explain --out`: built aside, marked, never written over what kemo did not write
# (an unmarked <run>/explanations of an older kemo holds only these suffixes).
EXPLANATIONS_DIR = OwnedDir("explanations folder", ".kemo-explanations",
                            legacy=(".html", ".png", "explanations.json"))


@dataclass
class Explanation:
    """One explained text: probabilities, predicted labels, word weights per label."""

    id: str
    text: str
    label_names: list[str]
    probs: np.ndarray  # (num_labels,)
    thresholds: list[float]
    predicted: list[str]  # labels at or above their threshold
    explained: list[str]  # `predicted`, or the top-probability label if none
    words: dict[str, list[tuple[str, float]]]  # label -> [(word, weight)], |weight| desc
    lime: object = None  # lime.explanation.Explanation
    files: dict[str, Path] = field(default_factory=dict)
    tokens: list[str] | None = None  # the tokenizer's pieces (None: an ensemble)
    seen_tokens: int = 0  # how many of them the model saw (its sequence length)
    source: str = ""  # the run explained
    num_samples: int | None = None

    def towards(self, label: str) -> list[tuple[str, float]]:
        return [(w, v) for w, v in self.words[label] if v > 0]

    def away(self, label: str) -> list[tuple[str, float]]:
        return [(w, v) for w, v in self.words[label] if v < 0]

    def summary(self) -> str:
        """A few lines for the terminal."""
        short = self.text if len(self.text) <= 70 else self.text[:67] + "..."
        lines = [f"[{self.id}] {short}",
                 f"  predicted: {', '.join(self.predicted) or '(none; explaining the top label)'}"]
        for label in self.explained:
            j = self.label_names.index(label)
            up = ", ".join(f"{w} {v:+.3f}" for w, v in self.towards(label)[:5]) or "-"
            down = ", ".join(f"{w} {v:+.3f}" for w, v in self.away(label)[:5]) or "-"
            lines.append(f"  {label} p={self.probs[j]:.3f} (threshold {self.thresholds[j]:.3f})"
                         f": towards {up}; away {down}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text,
                "probabilities": {n: float(p) for n, p in zip(self.label_names, self.probs)},
                "thresholds": dict(zip(self.label_names, map(float, self.thresholds))),
                "predicted": self.predicted, "explained": self.explained,
                "words": {k: [[w, float(v)] for w, v in ws] for k, ws in self.words.items()},
                "tokens": self.tokens, "tokens_seen": self.seen_tokens,
                "files": {k: str(v) for k, v in self.files.items()}}


def explain_text(run, text: str, id: str = "text", num_samples: int = 500,
                 num_features: int = 10, batch_size: int = 256, seed: int = 0,
                 lang: str | None = None) -> Explanation:
    """Explain `run`'s prediction for `text` with LIME (see the module docstring). The
    predicted labels are `run.decide`'s (with `lang`, at that language's thresholds
    where the run has them; else the global ones)."""
    from lime.lime_text import LimeTextExplainer

    text = str(text)
    if not re.search(r"\w", text):
        raise InputError(f"text {id!r}: has no words to explain ({text!r})")
    if num_samples < 10:
        raise InputError(f"num_samples: expected a value >= 10, got {num_samples}")
    names = run.label_names
    langs = None if lang is None else [lang]
    thresholds = [float(t) for t in run.thresholds.row_thresholds(1, len(names), langs)[0]]

    def classifier(texts):  # LIME calls this once with all perturbations
        rows = [f"text {id!r}" + (f" (perturbation {i})" if i else "")
                for i in range(len(texts))]
        return run.predict_probs(list(texts), batch_size, rows,  # non-finite: InputError
                                 None if lang is None else [lang] * len(texts))

    probs = classifier([text])[0]
    decided = run.decide(probs[None, :], langs)[0]
    predicted = [n for j, n in enumerate(names) if decided[j]]
    explained = predicted or [names[int(np.argmax(probs))]]
    label_idx = [names.index(n) for n in explained]
    explainer = LimeTextExplainer(class_names=names, bow=True, random_state=seed)
    exp = explainer.explain_instance(text, classifier, labels=label_idx,
                                     num_features=num_features, num_samples=num_samples)
    words = {names[j]: sorted(exp.as_list(label=j), key=lambda wv: -abs(wv[1]))
             for j in label_idx}
    tokens, seen = model_tokens(run, text)
    return Explanation(id, text, names, probs, thresholds, predicted, explained, words, exp,
                       tokens=tokens, seen_tokens=seen, source=str(getattr(run, "path", "")),
                       num_samples=num_samples)


def model_tokens(run, text: str) -> tuple[list[str] | None, int]:
    """The pieces `run`'s tokenizer cuts `text` into (special tokens left out) and how
    many of them fit the model's input; (None, 0) for an ensemble (no one tokenizer)."""
    from kemo.data.pipeline import tokenize

    preprocessor = getattr(run, "preprocessor", None)
    if preprocessor is None:
        return None, 0
    tokenizer = preprocessor.tokenizer
    special = {int(i) for i in getattr(tokenizer, "special_token_ids", None) or []}
    ids = [int(i) for i in np.asarray(tokenizer.tokenize(text)).ravel() if int(i) not in special]
    arrays = tokenize([text], preprocessor)
    fed = arrays["token_ids"][0][arrays["padding_mask"][0] > 0]
    seen = sum(int(i) not in special for i in fed)
    return [str(tokenizer.id_to_token(i)) for i in ids], min(seen, len(ids))


def plot_explanation(ex: Explanation, path):
    """A PNG: one horizontal bar chart per explained label (green towards, red away)."""
    from matplotlib.figure import Figure

    n = len(ex.explained)
    bars = max(len(ex.words[label]) for label in ex.explained)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(4.8 * ncols + 0.6, nrows * (1.3 + 0.32 * max(bars, 3)) + 0.3),
                 dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    for ax, label in zip(axes, ex.explained):
        j = ex.label_names.index(label)
        items = sorted(ex.words[label], key=lambda wv: wv[1])
        words = [w for w, _ in items]
        weights = [v for _, v in items]
        colors = ["tab:green" if v > 0 else "tab:red" for v in weights]
        ax.barh(range(len(items)), weights, color=colors)
        ax.set_yticks(range(len(items)), words)
        ax.axvline(0, color="black", lw=0.8)
        mark = "predicted" if label in ex.predicted else "not predicted, top label"
        ax.set_title(f"{label}: p={ex.probs[j]:.3f}, threshold {ex.thresholds[j]:.3f}\n({mark})",
                     fontsize="medium")
        ax.set_xlabel("LIME weight (green: towards, red: away)")
        ax.grid(axis="x", alpha=0.3)
    short = ex.text if len(ex.text) <= 110 else ex.text[:107] + "..."
    fig.suptitle(f"{ex.id}: {short}", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _file_stem(id: str, taken: set) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(id)).strip("._")[:80] or "text"
    base, k = stem, 2
    while stem in taken:
        stem, k = f"{base}_{k}", k + 1
    taken.add(stem)
    return stem


def save_explanation(ex: Explanation, out_dir, stem: str | None = None) -> dict[str, Path]:
    """Write `<stem>.html` (kemo's page, `kemo.explain_page`) and `<stem>.png` into
    `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or _file_stem(ex.id, set())
    html_path, png_path = out_dir / f"{stem}.html", out_dir / f"{stem}.png"
    write_text(html_path, explanation_page(ex, ex.source, ex.num_samples))
    plot_explanation(ex, png_path)
    ex.files = {"html": html_path, "png": png_path}
    return ex.files


def explain_many(run, items, out_dir, source: str = "--text", legacy_ok: bool = False,
                 **kwargs) -> list[Explanation]:
    """Explain and save every (id, text) of `items`; also writes `explanations.json`.

    Every text is checked first (`source` names them in errors, e.g. the CSV path).
    Keyword arguments go to `explain_text` (num_samples, num_features, batch_size, seed).
    `out_dir` follows `EXPLANATIONS_DIR`'s rule (new, empty, or kemo's, replaced whole);
    `legacy_ok`: an unmarked folder of an older kemo's explanations counts as kemo's.
    """
    items = [(str(i), str(t)) for i, t in items]
    for r, (id_, text) in enumerate(items):
        if not re.search(r"\w", text):
            where = (f"--text number {r + 1}" if source == "--text"
                     else f"{source}, row {r + 1} (id {id_!r}), column 'text'")
            raise InputError(f"{where}: no words to explain ({text!r})")
    out_dir = Path(out_dir)
    EXPLANATIONS_DIR.check(out_dir, legacy_ok)  # before the work: never over a user's files
    stage = EXPLANATIONS_DIR.stage(out_dir)  # renamed into place when every text is done
    try:
        taken: set = set()
        done = []
        for id_, text in items:
            ex = explain_text(run, text, id=str(id_), **kwargs)
            files = save_explanation(ex, stage, _file_stem(ex.id, taken))
            ex.files = {k: out_dir / Path(v).name for k, v in files.items()}  # once published
            done.append(ex)
        write_text(stage / "explanations.json",
                   json.dumps([ex.to_dict() for ex in done], indent=1, ensure_ascii=False))
        EXPLANATIONS_DIR.publish(out_dir, stage, legacy_ok)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return done
