"""Scoring a prediction file of a table dataset against the dataset's gold labels.

A prediction file is either the dataset's own shape (what `kemo predict RUN --split X`
writes, `kemo.prediction.dataset_files`: read back with the dataset's description) or
a CSV with `id` and one 0/1 column per label name. Rows are matched by id; every gold
id must be predicted once. The scores have `kemo.evaluation.scoring`'s shape: macro-F1
(zero_division 0), micro-F1 and per-label precision/recall/F1 per language of the
rows, their mean as `overall`, plus `overall.all_rows` (macro-F1 over every row at
once: the number published for a one-language dataset such as GoEmotions).

Example:
    scores = score_dataset_predictions("runs/go/predictions/dev/dev.tsv", dataset, "dev")
    scores["overall"]["macro_f1"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kemo.errors import InputError


def read_predictions(path, dataset, label_names):
    """The predictions in `path` as Examples over `label_names` (module docstring)."""
    from dataclasses import replace

    from kemo.data.table import read_table, table_format
    from kemo.prediction.dataset_files import prediction_spec

    path = Path(path)
    own = dataset.path("train")
    fmt = table_format(own, dataset.data.format)
    if path.suffix.lower() == ".csv" and fmt != "csv" or _is_id_label_csv(path, label_names):
        spec = replace(dataset.spec(), text="", id="id", language_column="",
                       encoding="columns", label_columns=tuple(label_names))
        frame = read_table(path, "csv", True)
        return _examples(frame, path, spec, label_names)
    frame = read_table(path, table_format(path, dataset.data.format), dataset.data.header,
                       dataset.data.columns)
    return _examples(frame, path, prediction_spec(dataset), label_names)


def _is_id_label_csv(path: Path, label_names) -> bool:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().strip().split(",")
    return header[:1] == ["id"] and set(label_names) <= set(header)


def _examples(frame, path, spec, label_names):
    from dataclasses import replace

    from kemo.data.table import table_examples

    if not spec.text:  # an id + labels CSV: no text column to check
        frame = frame.assign(**{"\0text": "-"})
        spec = replace(spec, text="\0text")
    return table_examples(frame, path, spec, label_names, labelled=True)


def score_dataset_predictions(path, dataset, split: str, label_names=None) -> dict:
    """Scores of the prediction file `path` against `split` of `dataset`."""
    from kemo.evaluation.scoring import LabelTable, score_tables

    if not dataset.labelled(split):
        raise InputError(f"config key 'data.unlabelled_splits': {split} has no gold labels "
                         "to score against")
    gold = dataset.read(split)
    names = list(label_names or gold.label_names)
    pred = read_predictions(path, dataset, names)
    index = {rid: k for k, rid in enumerate(pred.ids)}
    missing = [rid for rid in gold.ids if rid not in index]
    if missing:
        raise InputError(f"{path}: no prediction for id {missing[0]!r} of the {split} split "
                         f"({len(missing)} ids missing)")
    extra = [rid for rid in pred.ids if rid not in set(gold.ids)]
    if extra:
        raise InputError(f"{path}: id {extra[0]!r} is not in the {split} split")
    order = np.array([index[rid] for rid in gold.ids])
    gold_cols = [gold.label_names.index(n) for n in names]
    per_language = {}
    for lang in dict.fromkeys(gold.langs):
        rows = np.flatnonzero(gold.langs == lang)
        per_language[str(lang)] = score_tables(
            _table(str(path), names, pred.ids[order][rows], pred.labels[order][rows], "prediction",
                   LabelTable),
            _table(str(dataset.path(split)), names, gold.ids[rows],
                   gold.labels[rows][:, gold_cols], "gold", LabelTable))
    overall = {key: float(np.mean([s[key] for s in per_language.values()]))
               for key in ("macro_f1", "micro_f1")}
    overall["languages"] = len(per_language)
    overall["all_rows"] = score_tables(
        _table(str(path), names, pred.ids[order], pred.labels[order], "prediction", LabelTable),
        _table(str(dataset.path(split)), names, gold.ids, gold.labels[:, gold_cols], "gold",
               LabelTable))["macro_f1"]
    return {"per_language": per_language, "overall": overall}


def _table(name, names, ids, labels, role, label_table):
    cells = pd.DataFrame({"id": list(ids)})
    for j, n in enumerate(names):
        cells[n] = labels[:, j].astype(int).astype(str)
    return label_table(name, list(names), cells, role)
