"""`report.json`, typed: its keys, decision settings, format versions, reading, writing.

One owner of the file's schema, as `kemo.run.layout` owns the run's file names: every
key is named here once (other modules import the names; `tests/test_report_file.py`
scans kemo's source for a key spelled elsewhere). A report holds, per split
(`VALIDATION`, `DEV`), one section per decision `Setting` (a label set of any size:
`classification_report` dicts keyed by the run's own label names), or for an intensity
run (Track B, `label_kind = "intensity"`) the Pearson scores per `IntensityScore`; an
ensemble adds its `MEMBERS`' reports; `Meta` records how the run was made and decides.

`Report.read` checks every value (one `InputError` naming the file and the key) and
reads formats 1 (runs written before `format_version`) and 2; `Report.write` writes
the current format, whole or not at all (`kemo.atomic`): the last file a run writes.

Example:
    report = Report.read(run_dir, label_names)
    report.macro_f1(DEV, report.decides_with)        # the run's dev number
    report.section(VALIDATION, Setting.GLOBAL)[OVERALL][PER_LABEL]
    Report(splits, Meta(decides_with=Setting.GLOBAL, val_rows=90)).write(run_dir)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from kemo.atomic import write_text
from kemo.errors import InputError
from kemo.run import json_files as rf
from kemo.run import layout as L

# report.json's format: 2 adds `format_version` and `meta.served_by` for ensembles; runs
# written before have none and read as 1.
FORMAT_VERSION = 2

# -------------------------------------------------------------------- the keys
FORMAT_KEY = "format_version"
LABEL_KIND = "label_kind"  # "intensity" for Track B runs; absent: binary labels
INTENSITY = "intensity"  # label_kind's value for intensity runs
MAX_INTENSITY = "max_intensity"
META = "meta"
MEMBERS = "members"  # an ensemble's: member path -> its own report (validation, dev)
VALIDATION = "validation"
DEV = "dev"
SPLITS = (VALIDATION, DEV)

# A setting's section: all rows, each language, and the mean over languages.
OVERALL = "overall"
PER_LANGUAGE = "per_language"
MEAN = "mean_over_languages"  # the shared task's ranking number
MACRO_F1 = "macro_f1"
MICRO_F1 = "micro_f1"
LANGUAGES = "languages"

# A classification report (`kemo.evaluation.classification_scores.classification_report`).
N = "n"
PER_LABEL = "per_label"
MACRO = "macro"
MICRO = "micro"
WEIGHTED = "weighted"
SAMPLES = "samples"
AVERAGES = (MACRO, MICRO, WEIGHTED, SAMPLES)
PRECISION = "precision"
RECALL = "recall"
F1 = "f1"
SUPPORT = "support"
SCORES = (PRECISION, RECALL, F1)

# An intensity split: per IntensityScore the Pearson scores, and a confusion per label.
MEAN_R = "mean_r"
R = "r"
ROWS = "rows"
CONFUSION = "confusion"
CONFUSION_PER_LANGUAGE = "confusion_per_language"


class Setting(StrEnum):
    """The decision settings a split is scored at (`meta.decides_with` names one)."""

    AT_HALF = "threshold_0.5"
    GLOBAL = "tuned_thresholds"
    PER_LANGUAGE = "per_language_thresholds"

    @property
    def title(self) -> str:
        """Its name in a console report's title: `dev, threshold 0.5:`."""
        return _SETTING_NAMES[self][0]

    @property
    def column(self) -> str:
        """Its column head in the console's language table."""
        return _SETTING_NAMES[self][1]

    @property
    def page_title(self) -> str:
        """Its name on the HTML page."""
        return _SETTING_NAMES[self][2]

    @property
    def how(self) -> str:
        """How the run decides, in the result line: `(thresholds tuned on validation; ...`."""
        return _SETTING_NAMES[self][3]


_SETTING_NAMES = {
    Setting.AT_HALF: ("threshold 0.5", "at 0.5", "threshold 0.5", "at 0.5"),
    Setting.GLOBAL: ("thresholds tuned on validation (global)", "global", "tuned (global)",
                     "thresholds tuned on validation"),
    Setting.PER_LANGUAGE: ("thresholds tuned on validation, per language", "per-lang",
                           "tuned per language",
                           "per-language thresholds tuned on validation"),
}


class IntensityScore(StrEnum):
    """An intensity run's scores per split: of the continuous output, of the integers."""

    CONTINUOUS = "continuous"
    INTEGER = "integer"


CUT_POINTS = "cut_points"  # meta.decides_with of an intensity run


# --------------------------------------------------------------------- meta
class _Absent:
    """The marker of a `Meta` field not set: not written."""

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:  # `meta.notes or []`
        return False

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):  # one marker: `is ABSENT` holds in a copied Meta
        return self


ABSENT = _Absent()


@dataclass
class Meta:
    """report.json's `meta`: how the run was made and how it decides, built here only.

    Fields left `ABSENT` (false, as None is) are not written (a training run writes
    `resumed_after_epoch` as null, an ensemble has no `epochs_run`); keys of another
    kemo are kept in `extra`. Written in this field order.
    """

    ensemble_of: object = ABSENT  # an ensemble: its member run directories
    weights: object = ABSENT
    epochs_run: object = ABSENT
    best_epoch_restored: object = ABSENT
    fit_seconds: object = ABSENT
    total_seconds: object = ABSENT
    backend: object = ABSENT
    decides_with: object = ABSENT  # a Setting, or CUT_POINTS
    per_language_thresholds: object = ABSENT  # language -> thresholds (one per label)
    head: object = ABSENT  # intensity runs
    zero_shot_languages: object = ABSENT  # intensity runs
    train_rows: object = ABSENT
    val_rows: object = ABSENT
    resumed_after_epoch: object = ABSENT
    data_dir: object = ABSENT
    cpu: object = ABSENT
    processes: object = ABSENT
    validation: object = ABSENT  # why validation is not held out (data.validation = "dev")
    init_from: object = ABSENT
    served_by: object = ABSENT  # an ensemble: language -> the members averaged for it
    serve: object = ABSENT
    notes: object = ABSENT  # warnings the report page shows
    thresholds: object = ABSENT  # runs before thresholds.json held them alone
    backfilled: object = ABSENT  # per-language settings added by an older `kemo report`
    extra: dict = field(default_factory=dict)

    def get(self, name: str, default=None):
        """The field `name` (or an `extra` key), `default` when absent."""
        value = getattr(self, name, self.extra.get(name, ABSENT))
        return default if value is ABSENT else value

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**{k: v for k, v in out.items() if v is not ABSENT}, **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "Meta":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})


# Meta fields that are records, not facts of a header line (the page shows them apart).
META_RECORDS = frozenset({"thresholds", "per_language_thresholds", "backfilled",
                          "served_by", "notes"})


# ------------------------------------------------------------------- the report
@dataclass
class Report:
    """A run's report.json: split -> scores, `meta`, an ensemble's `members`."""

    splits: dict  # VALIDATION (and DEV) -> {Setting: section} or {IntensityScore: ...}
    meta: Meta = field(default_factory=Meta)
    members: dict | None = None
    label_kind: str | None = None  # INTENSITY for Track B
    max_intensity: int | None = None
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)  # keys of another kemo, kept as read
    # as read: whether the file had `meta` and `format_version` (`to_dict` gives it back)
    has_meta: bool = True
    has_format: bool = False

    @property
    def intensity(self) -> bool:
        return self.label_kind == INTENSITY

    @property
    def decides_with(self) -> str:
        """The setting the run decides with (`meta.decides_with`; before it: global)."""
        return self.meta.get("decides_with") or Setting.GLOBAL

    def split(self, name: str) -> dict | None:
        return self.splits.get(name)

    def section(self, split: str, setting) -> dict | None:
        """One setting's (or intensity score's) section of `split`; None: not there."""
        return (self.splits.get(split) or {}).get(setting)

    def macro_f1(self, split: str, setting, lang: str | None = None):
        """Macro-F1 of `split` at `setting`, all rows or of `lang`; None: not scored."""
        section = self.section(split, setting) or {}
        rep = section.get(OVERALL, {}) if lang is None else \
            section.get(PER_LANGUAGE, {}).get(lang, {})
        return rep[MACRO][F1] if MACRO in rep else None

    def language_labels(self) -> dict[str, list[str]]:
        """Each language's own labels as the run validated it (labels it was scored
        on, per language, in kemo's order); {} when the report has none."""
        key = IntensityScore.INTEGER if self.intensity else Setting.GLOBAL
        rep = self.section(VALIDATION, key) or {}
        return {lang: list(r.get(PER_LABEL) or {})
                for lang, r in (rep.get(PER_LANGUAGE) or {}).items() if r.get(PER_LABEL)}

    def to_dict(self) -> dict:
        """The JSON object, in the file's key order."""
        d = {FORMAT_KEY: self.format_version} if self.format_version > 1 or self.has_format \
            else {}
        if self.label_kind is not None:
            d[LABEL_KIND] = self.label_kind
        if self.max_intensity is not None:
            d[MAX_INTENSITY] = self.max_intensity
        d.update({s: self.splits[s] for s in SPLITS if s in self.splits})
        if self.members is not None:
            d[MEMBERS] = self.members
        meta = self.meta.to_dict()
        return {**d, **self.extra, **({META: meta} if meta or self.has_meta else {})}

    @classmethod
    def from_dict(cls, d: dict) -> "Report":
        """A report from its JSON object (no checks: `read` checks a file)."""
        known = {FORMAT_KEY, LABEL_KIND, MAX_INTENSITY, *SPLITS, MEMBERS, META}
        return cls({s: d[s] for s in SPLITS if s in d}, Meta.from_dict(d.get(META) or {}),
                   d.get(MEMBERS), d.get(LABEL_KIND), d.get(MAX_INTENSITY), report_format(d),
                   {k: v for k, v in d.items() if k not in known}, META in d, FORMAT_KEY in d)

    def write(self, run_dir) -> Path:
        """`report.json` in the current format, whole or absent: the last file a run
        writes (its presence marks the run finished)."""
        self.format_version = FORMAT_VERSION
        path = Path(run_dir) / L.REPORT
        write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def read(cls, run_dir, label_names=None) -> "Report":
        """`run_dir/report.json`, every value checked (`check_report`)."""
        return cls.from_dict(check_report(rf.read_json(Path(run_dir) / L.REPORT),
                                          Path(run_dir) / L.REPORT, label_names))


def report_format(d: dict) -> int:
    """The format of a report.json object: runs written before the field are format 1;
    0 for a value that is no format."""
    version = d.get(FORMAT_KEY, 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def check_report(d: dict, path, label_names=None) -> dict:
    """`d` (report.json at `path`) checked where kemo reads it: a known format; every
    classification report holds finite scores for labels among `label_names`;
    `meta.thresholds` (runs before thresholds.json held them alone) one per label."""
    if not 1 <= report_format(d) <= FORMAT_VERSION:
        raise InputError(f"{rf.where(path, FORMAT_KEY)}: {d.get(FORMAT_KEY)!r} is "
                         f"not a report format this kemo reads (1..{FORMAT_VERSION}: "
                         "a newer kemo wrote it?)")
    if d.get(LABEL_KIND) == INTENSITY:  # Track B: Pearson r, not F1
        for split in SPLITS:
            for kind in IntensityScore if split in d else ():
                rf.number(d, (split, kind, MEAN_R), path, -1.0, 1.0)
        return d
    for split in SPLITS:
        if split == DEV and split not in d:
            continue
        for key in Setting:
            if key == Setting.PER_LANGUAGE and key not in rf.field(d, split, path, dict):
                continue  # runs written before per-language thresholds
            _check_section(d, path, (split, key), label_names)
    for member in rf.field(d, MEMBERS, path, dict, optional=True) or {}:  # an ensemble
        for split in SPLITS:
            if split in d and split in d[MEMBERS][member]:
                for key in (Setting.AT_HALF, Setting.GLOBAL):
                    _check_scores(d, path, (MEMBERS, member, split, key, OVERALL),
                                  label_names)
    _check_meta(d, path, label_names)
    return d


def _check_section(d: dict, path, keys: tuple, label_names) -> None:
    """One setting's section: overall, per language, the mean over languages."""
    _check_scores(d, path, keys + (OVERALL,), label_names)
    langs = rf.field(d, keys + (PER_LANGUAGE,), path, dict, optional=True)
    for lang in langs or {}:
        _check_scores(d, path, keys + (PER_LANGUAGE, lang), label_names)
    if rf.field(d, keys + (MEAN,), path, dict, optional=True):
        for k in (MACRO_F1, MICRO_F1):
            rf.number(d, keys + (MEAN, k), path, 0.0, 1.0)
        rf.number(d, keys + (MEAN, LANGUAGES), path, 0, integer=True)


def _check_meta(d: dict, path, label_names) -> None:
    n = len(label_names) if label_names else None
    if rf.field(d, (META, "thresholds"), path, list, optional=True) is not None:
        rf.numbers(d[META]["thresholds"], path, (META, "thresholds"), n, 0.0, 1.0)
    per_language = (META, Setting.PER_LANGUAGE.value)
    for lang in rf.field(d, per_language, path, dict, optional=True) or {}:
        rf.numbers(rf.field(d, per_language + (lang,), path, list), path,
                   per_language + (lang,), n, 0.0, 1.0)


def _check_scores(d: dict, path, keys: tuple, label_names) -> None:
    """One classification report at `d[keys[0]][keys[1]]...`."""
    rep = rf.field(d, keys, path, dict)
    rf.number(d, keys + (N,), path, 0, integer=True)
    for label in rf.field(d, keys + (PER_LABEL,), path, dict):
        if label_names is not None and label not in label_names:
            raise InputError(f"{rf.where(path, keys + (PER_LABEL,))}: unexpected label "
                             f"{label!r} (the run's labels are {', '.join(label_names)})")
        for k in SCORES:
            rf.number(d, keys + (PER_LABEL, label, k), path, 0.0, 1.0)
        rf.number(d, keys + (PER_LABEL, label, SUPPORT), path, 0, integer=True)
    for avg in AVERAGES:
        if avg in rep:
            for k in SCORES:
                rf.number(d, keys + (avg, k), path, 0.0, 1.0)
