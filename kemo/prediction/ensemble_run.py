"""An ensemble loaded for prediction: several finished runs averaged into one predictor.

Each row of a language is averaged over the members trained on it, each label over the
members predicting it (`serving_weights`); a text of no member's language, or of none
given, over all of them. Built by `kemo.ensemble.build_ensemble`; loaded here.
`kemo.prediction.predictor.load_predictor` returns an `EnsembleRun` for an ensemble's
directory, so `predict`, `evaluate`, `report`, `explain` and `export` take it like any run.

Example:
    run = load_ensemble("runs/ab")            # or load_predictor("runs/ab")
    probs, decisions = run.predict(["I am so happy today!"], langs=["eng"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.ensemble_file import ENSEMBLE_FILE, check_member, read_ensemble_file
from kemo.prediction.thresholds import ThresholdSearch


@dataclass
class EnsembleRun:
    """A finished ensemble: the member runs, their weights and the tuned thresholds.

    A `kemo.prediction.predictor.Predictor`, as `kemo.prediction.trained_run.Run` is (`config`,
    `label_names`, `thresholds`, `decide`, `predict_probs`, `predict`).
    """

    path: Path
    config: object  # the first member's Config (data settings)
    members: list
    weights: list[float]
    thresholds: ThresholdSearch
    language_labels: dict = field(default_factory=dict)  # as `kemo.prediction.trained_run.Run`'s
    serve: str = "average"  # or "specialist": `serving_weights`

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds.label_names)

    def predict_probs(self, texts, batch_size: int = 64, rows=None, langs=None) -> np.ndarray:
        """The weighted mean of the members' sigmoid probabilities (each member's checked
        finite, naming its model file and the first bad row: `rows`). With `langs` (one
        code per row, None where unknown) a row is averaged over the members trained on
        its language (`serving_weights`); without, over every member predicting a label."""
        weights, parts = self.member_probs(texts, batch_size, rows, langs)
        return combine_probs(weights, parts, self.members, self.label_names)

    def member_probs(self, texts, batch_size: int = 64, rows=None, langs=None):
        """(`serving_weights` (rows, members, labels), [(row indices, probabilities)
        per member]): each member predicts only the rows it serves."""
        texts = [str(t) for t in texts]
        weights = serving_weights(self.members, self.weights, self.label_names, langs,
                                  len(texts), self.serve)
        parts = []
        for k, m in enumerate(self.members):
            need = np.flatnonzero(weights[:, k, :].sum(axis=1) > 0)
            p = m.predict_probs([texts[i] for i in need], batch_size,
                                None if rows is None else [rows[i] for i in need]) \
                if len(need) else np.zeros((0, len(m.label_names)), "float32")
            parts.append((need, p))
        return weights, parts

    def decide(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions at the ensemble's thresholds, as
        `kemo.prediction.trained_run.Run.decide`."""
        return self.thresholds.apply(probs, langs)

    def predict(self, texts, batch_size: int = 64, langs=None) -> tuple[np.ndarray, np.ndarray]:
        probs = self.predict_probs(texts, batch_size, langs=langs)
        return probs, self.decide(probs, langs)


def member_languages(member) -> list[str]:
    """The languages a member run was trained on (its config's `data.languages`; a table
    dataset's `data.language`, `kemo.data.dataset.trained_languages`)."""
    from kemo.data.dataset import trained_languages

    langs = trained_languages(member.config)
    return langs if langs is not None else list(dict.fromkeys(member.config.data.languages))


def union_labels(members) -> list[str]:
    """Every label some member predicts, in kemo's order (`kemo.data.brighter.label_order`:
    Track A's names in Track A's order, others in the members' order)."""
    from kemo.data.brighter import label_order

    return label_order(dict.fromkeys(n for m in members for n in m.label_names))


SERVE_MODES = ("average", "specialist")


def covering_members(langs_of, lang, serve: str = "average") -> list[int]:
    """Indices of the members that serve rows of `lang` (`langs_of`: each member's
    languages): every member trained on it ("average"), or of those only the ones
    trained on the fewest languages ("specialist": a member fine-tuned on `lang` alone
    serves it instead of the multilingual run it started from).

    Example:
        covering_members([ALL28, ["deu"]], "deu", "specialist")   # [1]
        covering_members([ALL28, ["deu"]], "eng", "specialist")   # [0]
    """
    covering = [k for k, ls in enumerate(langs_of) if lang in ls]
    if serve == "specialist" and covering:
        fewest = min(len(set(langs_of[k])) for k in covering)
        covering = [k for k in covering if len(set(langs_of[k])) == fewest]
    return covering


def serving_weights(members, weights, label_names, langs=None, n: int = None,
                    serve: str = "average") -> np.ndarray:
    """(rows, members, labels) averaging weights: member k serves label j of a row when
    it predicts j and `covering_members` (with `serve`) names it for the row's
    language; its share is its weight over the serving members' total. A row whose
    language no member (predicting j) was trained on, or with no language (`langs`
    None or a None entry), is served by every member predicting j (zero-shot for them).

    Example:
        w = serving_weights([e5_all, mpnet_eng], [0.5, 0.5], names, ["eng", "deu"])
        w[0, :, names.index("gratitude")]   # eng: [0.5, 0.5]; w[1, :, ...]: deu: [1.0, 0.0]
    """
    n = len(langs) if langs is not None else int(n or 0)
    has = np.array([[name in m.label_names for name in label_names] for m in members], float)
    base = np.asarray(weights, "float64")[:, None] * has  # (members, labels)
    w = np.broadcast_to(base, (n, *base.shape)).copy()
    if langs is not None:
        langs_of = [member_languages(m) for m in members]
        serving = {lang: set(covering_members(langs_of, lang, serve)) for lang in set(langs)}
        covers = np.array([[k in serving[lang] for k in range(len(members))]
                           for lang in langs], float)  # (n, m)
        served = w * covers[:, :, None]
        some = served.sum(axis=1, keepdims=True) > 0
        w = np.where(some, served, w)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def combine_probs(weights, parts, members, label_names) -> np.ndarray:
    """The (rows, labels) weighted mean of `EnsembleRun.member_probs`' parts."""
    out = np.zeros((weights.shape[0], len(label_names)), "float64")
    for k, (m, (need, p)) in enumerate(zip(members, parts)):
        if len(need):
            cols = [list(label_names).index(n) for n in m.label_names]
            out[np.ix_(need, cols)] += weights[need][:, k, cols] * p
    return out.astype("float32")


def load_ensemble(run_dir) -> EnsembleRun:
    """Load an ensemble run directory written by `build_ensemble` (members included)."""
    from kemo.prediction.trained_run import load_run, read_run_state

    path = Path(run_dir)
    spec = read_ensemble_file(path)  # ensemble.json
    state = read_run_state(path)  # config, thresholds.json against ensemble.json's labels
    if state.report is None:  # report.json is written last: building it was cut short
        raise InputError(f"ensemble {path}: not finished (no {L.REPORT}: building it was "
                         "interrupted); build it again with kemo ensemble MEMBERS... "
                         f"--run-dir {path} --overwrite")
    members = []
    for i, p in enumerate(spec["paths"]):
        try:
            members.append(load_run(p))
        except InputError as e:
            raise InputError(f"ensemble {path}, member {i} ({p}): {e}") from None
        check_member(spec, i, p)  # the run it was built from, not a replacement
    names = union_labels(members)
    if names != spec["label_names"]:
        raise InputError(f"{path / ENSEMBLE_FILE}, field 'label_names': "
                         f"{', '.join(spec['label_names'])}, but the members predict "
                         f"{', '.join(names)}")
    return EnsembleRun(path, state.config, members, spec["weights"], state.thresholds,
                       state.report.language_labels(), spec["serve"])
