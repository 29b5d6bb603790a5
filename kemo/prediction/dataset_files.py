"""Predictions of a table dataset's split, in the dataset's own shape and label encoding.

For a split file `<name>.<ext>` of a table dataset (`data.layout = "table"`) a run
writes, under the output folder:

- `<name>.<ext>`: the file as read (same format, header or not, every column), its
  labels replaced by the run's decisions in the dataset's encoding: 0/1 label columns,
  or the list column as label indices / names joined by `data.label_separator`
  (GoEmotions: `0,15`). A grouped dataset (`data.label_groups_file`) has other labels
  than its files: its list column then holds the group names.
- `<name>.probs.csv`: id and `p_<label>` for every label of the run (6 decimals).
- `<name>.labels.csv`: id and one 0/1 column per label of the run, the same decisions
  without the texts (a file to hand to whoever holds the gold labels).

`kemo evaluate` reads the first and the last back with the same description
(`prediction_spec`).

Example:
    write_dataset_predictions(out, dataset, "test", test_examples, probs, decisions)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from kemo.atomic import atomic_path, write_csv


def prediction_spec(dataset):
    """How a prediction file of `dataset` encodes its labels: the dataset's spec, with
    the group names as a names list when the dataset is grouped."""
    spec = dataset.spec()
    if dataset.groups is not None and spec.encoding != "columns":
        spec = replace(spec, encoding="names")
    return spec


def prediction_names(dataset, split: str) -> tuple[Path, Path, Path]:
    """(predictions, probabilities, 0/1 label columns) file names for `split` of `dataset`."""
    path = dataset.path(split)
    return Path(path.name), Path(f"{path.stem}.probs.csv"), Path(f"{path.stem}.labels.csv")


def write_dataset_predictions(out_dir, dataset, split: str, ex, probs, decisions) -> list[Path]:
    """The three files of the module docstring for `split`; returns their paths
    (predictions, probabilities, label columns)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(ex.label_names)
    frame = dataset.frame(split).copy()
    spec = prediction_spec(dataset)
    decisions = np.asarray(decisions).astype(int)
    if spec.encoding == "columns":
        for j, n in enumerate(names):
            frame[n] = decisions[:, j]
    else:
        chosen = [[n for j, n in enumerate(names) if row[j]] for row in decisions]
        if spec.encoding == "indices":
            chosen = [[str(names.index(n)) for n in row] for row in chosen]
        frame[spec.labels_column] = [spec.separator.join(row) for row in chosen]
    pred_name, probs_name, labels_name = prediction_names(dataset, split)
    pred_path = out_dir / pred_name
    _write_like(frame, pred_path, dataset)
    p = pd.DataFrame({"id": ex.ids})
    for j, n in enumerate(names):
        p[f"p_{n}"] = np.round(np.asarray(probs)[:, j].astype("float64"), 6)
    write_csv(p, out_dir / probs_name)
    write_csv(pd.DataFrame({"id": ex.ids, **{n: decisions[:, j] for j, n in enumerate(names)}}),
              out_dir / labels_name)
    return [pred_path, out_dir / probs_name, out_dir / labels_name]


def _write_like(frame: pd.DataFrame, path: Path, dataset) -> None:
    """`frame` in the dataset's format (header as its files have it), whole or absent."""
    from kemo.data.table import table_format

    fmt = table_format(dataset.path("train"), dataset.data.format)
    with atomic_path(path) as tmp:
        if fmt in ("csv", "tsv"):
            frame.to_csv(tmp, sep="," if fmt == "csv" else "\t", index=False,
                         header=dataset.data.header)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_parquet(tmp, index=False)
