"""kemo from Python: a trained run or an ensemble as one object, one call per task.

`kemo.load(path)` reads a run directory (`kemo train`) or an ensemble (`kemo ensemble`)
through `kemo.prediction.predictor.load_predictor`, files validated as every command
validates them. The `Classifier` it returns predicts texts or a DataFrame and evaluates
on a split or a labelled DataFrame, each in one call, with the run's own label names
and thresholds (per language where the run has them).

Example:
    import kemo
    clf = kemo.load("runs/tour")
    clf.labels                                   # the run's label names, in output order
    clf.predict(["I can't stop smiling today"])  # text, labels, p_<label>..., <label>...
    clf.evaluate("dev")                          # macro-F1 per language, mean, all rows
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kemo.errors import InputError


def load(path) -> "Classifier":
    """The run or ensemble in `path` as a `Classifier` (an `InputError` naming the file
    and field when a file is missing or damaged).

    Example:
        clf = kemo.load("runs/tour")
    """
    from kemo.prediction.predictor import load_predictor

    return Classifier(load_predictor(path))


class Classifier:
    """A loaded run or ensemble (`kemo.prediction.predictor.Predictor`) with pandas in and
    out: `predict` and `evaluate`; `labels`, `thresholds`, `languages` from the run."""

    def __init__(self, predictor):
        self.predictor = predictor

    @property
    def path(self) -> Path:
        return Path(self.predictor.path)

    @property
    def labels(self) -> list[str]:
        """The run's label names, in its output order."""
        return list(self.predictor.label_names)

    @property
    def languages(self) -> list[str]:
        """The languages the run was trained on (an ensemble: its members', together; a
        table dataset: its `data.language`, none known when its rows carry a language
        column)."""
        from kemo.data.dataset import trained_languages

        members = getattr(self.predictor, "members", None) or [self.predictor]
        return list(dict.fromkeys(lang for m in members
                                  for lang in trained_languages(m.config) or []))

    @property
    def thresholds(self) -> dict[str, float]:
        """Label -> the global threshold the run decides with (per-language ones, if the
        run has them, apply when a text's language is given)."""
        return {n: float(t) for n, t in zip(self.labels, self.predictor.thresholds.thresholds)}

    def __repr__(self) -> str:
        return (f"Classifier({self.path}: {', '.join(self.languages)}; "
                f"labels {', '.join(self.labels)})")

    def predict(self, texts, langs=None, batch_size: int = 64) -> pd.DataFrame:
        """One row per text: `text`, `labels` (the predicted label names, comma-joined),
        `p_<label>` (probabilities) and `<label>` (0/1 at the run's thresholds).

        `texts`: a string, a list of strings, or a DataFrame with a `text` column (its
        `id` column, if any, becomes the index; its `lang` column gives each row's
        language). `langs`: one language code per text, or one for all; by default a
        one-language run's language, else none (the global thresholds).

        Example:
            clf.predict(["so happy", "so scared"])
            clf.predict(pd.DataFrame({"id": ["a", "b"], "text": ["so happy", "so scared"]}))
        """
        frame = _texts_frame(texts)
        rows = frame["text"].tolist()
        langs = self._langs(frame, langs)
        probs = self.predictor.predict_probs(rows, batch_size, langs=langs) if rows else \
            np.zeros((0, len(self.labels)), "float32")
        decisions = self.predictor.decide(probs, langs)
        out = pd.DataFrame({"text": rows}, index=frame.index)
        out["labels"] = [", ".join(n for n, d in zip(self.labels, row) if d)
                         for row in decisions]
        for j, name in enumerate(self.labels):
            out[f"p_{name}"] = probs[:, j].astype(float)
        for j, name in enumerate(self.labels):
            out[name] = decisions[:, j].astype(int)
        return out

    def evaluate(self, data="dev", data_dir=None, batch_size: int = 64) -> pd.DataFrame:
        """Scores at the run's thresholds: one row per language, then `mean` (the mean of
        the per-language macro-F1, the shared task's number) and `all` (every row
        pooled); columns `rows`, `macro_f1`, `micro_f1` and each label's F1.

        `data`: a split name (`"dev"`, `"train"`: the run's languages read from
        `data_dir`, else $KEMO_DATA_DIR, else the config's) or a DataFrame with a
        `text` column, 0/1 label columns named as `labels` (a missing or blank cell: not
        annotated) and optionally `lang`.

        Example:
            clf.evaluate("dev").loc["mean", "macro_f1"]
        """
        examples = self._examples(data, data_dir)
        probs = self.predictor.predict_probs(list(examples.texts), batch_size,
                                             langs=list(examples.langs))
        decisions = self.predictor.decide(probs, list(examples.langs))
        from kemo.evaluation.classification_scores import setting_report
        from kemo.run.report_file import MACRO_F1, MEAN, MICRO_F1, OVERALL, PER_LANGUAGE

        section = setting_report(examples, decisions)
        table = {lang: _score_row(r, self.labels) for lang, r in section[PER_LANGUAGE].items()}
        mean = section[MEAN]
        table["mean"] = {"rows": len(examples), "macro_f1": mean[MACRO_F1],
                         "micro_f1": mean[MICRO_F1]}
        table["all"] = _score_row(section[OVERALL], self.labels)
        return pd.DataFrame.from_dict(table, orient="index")[
            ["rows", "macro_f1", "micro_f1", *self.labels]]

    def _langs(self, frame: pd.DataFrame, langs):
        if langs is None and "lang" in frame.columns:
            langs = frame["lang"].astype(str).tolist()
        if langs is None and len(self.languages) == 1:
            langs = self.languages[0]
        if isinstance(langs, str):
            langs = [langs] * len(frame)
        if langs is not None and len(langs) != len(frame):
            raise InputError(f"langs: {len(langs)} language codes for {len(frame)} texts")
        return None if langs is None else list(langs)

    def _examples(self, data, data_dir):
        """`Examples` in the run's label order, from a split name or a DataFrame."""
        from kemo.data.brighter import Examples, load_split

        if isinstance(data, str):
            if data not in ("train", "dev"):
                raise InputError(f"evaluate: {data!r} has no labels to score against: give "
                                 "'dev', 'train' or a DataFrame with label columns")
            from kemo.data.dataset import TrackADataset, open_dataset

            dataset = open_dataset(self.predictor.config.data, data_dir)
            if isinstance(dataset, TrackADataset):
                split = load_split(dataset.root, data, self.languages)
            else:
                split = dataset.read(data)
            cols = {n: split.labels[:, j] for j, n in enumerate(split.label_names)}
            known = {n: split.mask[:, j] for j, n in enumerate(split.label_names)}
            ids, texts, langs = split.ids, split.texts, split.langs
        else:
            frame = _texts_frame(data)
            cols = {n: frame[n] for n in self.labels if n in frame.columns}
            if not cols:
                raise InputError(f"evaluate: the DataFrame has none of the run's label "
                                 f"columns ({', '.join(self.labels)})")
            known = {n: c.notna().to_numpy().astype("float32") for n, c in cols.items()}
            cols = {n: c.fillna(0).to_numpy().astype("float32") for n, c in cols.items()}
            langs = np.asarray(self._langs(frame, None) or ["(no lang)"] * len(frame),
                               dtype=object)
            ids, texts = frame.index.to_numpy(dtype=object), frame["text"].to_numpy(dtype=object)
        n = len(texts)
        labels = np.stack([cols.get(name, np.zeros(n, "float32")) for name in self.labels], 1)
        mask = np.stack([known.get(name, np.zeros(n, "float32")) for name in self.labels], 1)
        return Examples(np.asarray(ids, dtype=object), np.asarray(texts, dtype=object),
                        np.asarray(langs, dtype=object), labels.astype("float32"),
                        mask.astype("float32"), tuple(self.labels))


def _texts_frame(texts) -> pd.DataFrame:
    """A DataFrame with a `text` column (index: the `id` column if there is one)."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, pd.Series):
        texts = texts.to_frame("text")
    if not isinstance(texts, pd.DataFrame):
        texts = pd.DataFrame({"text": list(texts)})
    if "text" not in texts.columns:
        raise InputError(f"the DataFrame has no 'text' column (columns: "
                         f"{', '.join(map(str, texts.columns))})")
    frame = texts.set_index("id") if "id" in texts.columns else texts
    return frame.assign(text=frame["text"].astype(str))


def _score_row(scores: dict, labels) -> dict:
    """One table row of a `classification_report`: rows, macro/micro F1, F1 per label."""
    from kemo.run.report_file import F1, MACRO, MICRO, N, PER_LABEL

    per = scores.get(PER_LABEL, {})
    return {"rows": scores.get(N, 0),
            "macro_f1": (scores.get(MACRO) or {}).get(F1, float("nan")),
            "micro_f1": (scores.get(MICRO) or {}).get(F1, float("nan")),
            **{n: per[n][F1] if n in per else float("nan") for n in labels}}
