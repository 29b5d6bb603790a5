"""A dataset as the config describes it (`[data]`), and the reader it dispatches to.

`data.layout = "track_a"` (the default): BRIGHTER Track A, `<root>/{train,dev,test}/
<lang>.csv` for `data.languages` (`kemo.data.brighter`). `data.layout = "table"`: one
file per split (`data.train_file`, `dev_file`, `test_file`, relative to the data root),
CSV, TSV, JSON Lines or Parquet, read by `kemo.data.table` with the columns and label
encoding the config names, then optionally grouped (`kemo.data.label_groups`). A split
listed in `data.unlabelled_splits` (default: test) is never read as gold.

The data root of a Track A dataset: `--data-dir`, else `$KEMO_DATA_DIR`, else
`data.data_dir` (`kemo.data.brighter.resolve_data_dir`). A table dataset names its own
files, so its root is `--data-dir`, else `data.data_dir`, else `$KEMO_DATA_DIR`
(which conventionally names the Track A root).

Example:
    ds = open_dataset(load_config("configs/goemotions.toml").data)
    train = ds.read("train")            # Examples, 28 labels
    ds.label_names[:2], ds.files("dev")  # ('admiration', 'amusement'), {'dev.tsv': ...}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kemo.data.brighter import (
    DATA_DIR_ENV, RECORDED, Examples, label_order, load_split, resolve_data_dir, split_file,
)
from kemo.errors import InputError

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


class TrackADataset:
    """BRIGHTER Track A files of `languages` under `root` (see `kemo.data.brighter`).

    `max_intensity` > 0 (config `data.label_kind = "intensity"`): Track B, cells are
    intensities 0..max_intensity, and a language without a train file (Track B's `ron`)
    is zero-shot: trained on none of its rows, its dev and test predicted and scored."""

    layout = "track_a"

    def __init__(self, root: Path, languages, max_intensity: int = 0):
        self.root, self.languages = Path(root), list(dict.fromkeys(languages))
        self.max_intensity = max_intensity  # 0: binary labels (Track A)

    @property
    def intensity(self) -> bool:
        return self.max_intensity > 0

    def zero_shot_languages(self) -> list[str]:
        """Intensity datasets: the languages without a train file (none for Track A,
        where a missing train file is an error)."""
        if not self.intensity:
            return []
        return [lg for lg in self.languages if not split_file(self.root, "train", lg).exists()]

    def has(self, split: str, lang: str | None = None) -> bool:
        langs = [lang] if lang else self.languages
        return any(split_file(self.root, split, lg).exists() for lg in langs)

    def labelled(self, split: str) -> bool:
        return split != "test"

    def files(self, split: str) -> dict[str, Path]:
        """`{"<split>/<lang>.csv": path}` of the files `read(split)` reads (train: all
        the trained languages')."""
        langs = (self.trained_languages() if split == "train" else
                 [lg for lg in self.languages if split_file(self.root, split, lg).is_file()])
        return {f"{split}/{lang}.csv": split_file(self.root, split, lang) for lang in langs}

    def read(self, split: str, languages=None) -> Examples:
        """`split` for `languages` (default: the dataset's; all must have the file;
        train: the languages that are not zero-shot)."""
        if languages is None:
            languages = self.trained_languages() if split == "train" else self.languages
        if not languages:
            raise InputError(f"{self.root / split}: no train file of any of the languages "
                             f"{', '.join(self.languages)} (config key 'data.languages')")
        return load_split(self.root, split, languages, self.max_intensity or 1)

    def trained_languages(self):
        zero = self.zero_shot_languages()
        return [lg for lg in self.languages if lg not in zero]


class TableDataset:
    """One table file per split (module docstring); `data` is the config's [data]."""

    layout = "table"

    def __init__(self, root: Path, data):
        self.root, self.data = Path(root), data
        self._frames = {}
        self._names = None
        self._groups = None

    def path(self, split) -> Path | None:
        """The file of `split` ("train", "dev", "test"), or `split` itself when it is a
        Path (another file in the dataset's shape: `kemo predict RUN FILE`)."""
        if isinstance(split, Path):
            return split
        name = getattr(self.data, f"{split}_file")
        return self.root / name if name else None

    def has(self, split: str, lang: str | None = None) -> bool:
        return self.path(split) is not None

    def labelled(self, split) -> bool:
        return not isinstance(split, Path) and split not in self.data.unlabelled_splits

    def files(self, split: str) -> dict[str, Path]:
        path = self.path(split)
        names = [self.data.label_names_file, self.data.label_groups_file]
        extra = {n: self.root / n for n in names if n}
        return {**({getattr(self.data, f"{split}_file"): path} if path else {}), **extra}

    def spec(self):
        from kemo.data.table import TableSpec

        d = self.data
        return TableSpec(d.text_column, d.id_column, d.language_column, d.language,
                         d.label_encoding, tuple(d.label_columns), d.labels_column,
                         d.label_separator)

    def frame(self, split: str):
        from kemo.data.table import read_table, table_format

        if split not in self._frames:
            path = self.path(split)
            if path is None:
                raise InputError(f"config key 'data.{split}_file': empty (the dataset has no "
                                 f"{split} split)")
            self._frames[split] = read_table(path, table_format(path, self.data.format),
                                             self.data.header, self.data.columns)
        return self._frames[split]

    @property
    def source_label_names(self) -> tuple[str, ...]:
        """The labels the files encode (before any grouping)."""
        if self._names is None:
            self._names = self._source_names()
        return self._names

    def _source_names(self) -> tuple[str, ...]:
        from kemo.data.table import found_label_names, label_columns

        d = self.data
        if d.label_names:
            names = tuple(d.label_names)
            where = "config key 'data.label_names'"
        elif d.label_names_file:
            path = self.root / d.label_names_file
            names, where = read_label_names(path), str(path)
        elif d.label_encoding == "columns":
            return label_columns(self.frame("train"), self.path("train"), self.spec())
        else:
            return found_label_names(self.frame("train"), self.path("train"), self.spec())
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice:
            raise InputError(f"{where}: label {twice!r} given twice")
        return names

    @property
    def groups(self) -> dict | None:
        from kemo.data.label_groups import read_label_groups

        if self.data.label_groups_file and self._groups is None:
            self._groups = read_label_groups(self.root / self.data.label_groups_file,
                                             self.source_label_names)
        return self._groups

    @property
    def label_names(self) -> tuple[str, ...]:
        from kemo.data.label_groups import grouped_names

        names = self.source_label_names
        if self.groups is not None:
            names = grouped_names(self.groups, names, self.data.ungrouped_labels)
        return tuple(label_order(names))

    def read(self, split: str, languages=None) -> Examples:
        """`split` as Examples, grouped as configured (`languages` does not apply)."""
        from kemo.data.label_groups import group_examples
        from kemo.data.examples import align_labels
        from kemo.data.table import table_examples

        ex = table_examples(self.frame(split), self.path(split), self.spec(),
                            self.source_label_names, self.labelled(split))
        if self.groups is not None:
            ex = group_examples(ex, self.groups, self.data.ungrouped_labels)
        return ex if ex.label_names == self.label_names else align_labels(ex, self.label_names)

    def trained_languages(self):
        """The row language codes (None: a language column; any code)."""
        return None if self.data.language_column else [self.data.language]


def read_label_names(path: Path) -> tuple[str, ...]:
    """One label name a line (blank lines skipped), e.g. GoEmotions' emotions.txt."""
    if not path.is_file():
        raise InputError(f"{path}: file not found (config key 'data.label_names_file')")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    names = tuple(line.strip() for line in lines if line.strip())
    if not names:
        raise InputError(f"{path}: no label names (expected one a line)")
    return names


def table_root(data_dir=None, configured=None, recorded=None) -> Path:
    """The root of a table dataset: `data_dir`, else `configured`, else $KEMO_DATA_DIR,
    else `recorded` (a resumed run's, from its run.json)."""
    candidates = (("--data-dir", data_dir), ("config key 'data.data_dir'", configured),
                  (f"${DATA_DIR_ENV}", os.environ.get(DATA_DIR_ENV)), (RECORDED, recorded))
    source, value = next(((n, v) for n, v in candidates if v), (None, None))
    if not value:
        return Path(".")  # file names relative to the working directory
    path = Path(value)
    if not path.is_dir():
        raise InputError(f"data directory {path}: not found (from {source})")
    return path


def open_dataset(data, data_dir=None, recorded=None):
    """The dataset the config's [data] section describes, under its data root
    (`recorded`: where a resumed run read it, the last source asked)."""
    if data.layout == "table":
        return TableDataset(table_root(data_dir, data.data_dir, recorded), data)
    kind = getattr(data, "label_kind", "binary")
    return TrackADataset(resolve_data_dir(data_dir, data.data_dir, recorded), data.languages,
                         data.max_intensity if kind == "intensity" else 0)


def trained_languages(cfg) -> list[str] | None:
    """The language codes a run of `cfg` trains on, without reading data (None: any,
    a table dataset with a language column)."""
    if cfg.data.layout == "table":
        return None if cfg.data.language_column else [cfg.data.language]
    return list(dict.fromkeys(cfg.data.languages))


def read_available(dataset, split: str) -> Examples | None:
    """`split` where the dataset has it (Track A: the languages with its file); None
    where it has none."""
    if dataset.layout == "track_a":
        langs = [lang for lang in dataset.languages if dataset.has(split, lang)]
        return dataset.read(split, langs) if langs else None
    return dataset.read(split) if dataset.has(split) else None


def describe_dataset(dataset) -> str:
    """One line: where the data is and what it is (what `kemo train` prints)."""
    if dataset.layout == "track_a":
        return f"{dataset.root} (languages: {', '.join(dataset.languages)})"
    d = dataset.data
    files = ", ".join(getattr(d, f"{s}_file") for s in SPLITS if getattr(d, f"{s}_file"))
    return f"{dataset.root} ({files})"
