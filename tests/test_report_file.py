"""One owner of report.json's schema (issue 34): `kemo/run/report_file.py`.

The typed `Report` reads formats 1 and 2 with every value checked, writes the current
one whole, carries any label set and intensity runs; and, as `test_run_layout.py` does
for file names, a scan of kemo's source fails on a report key spelled outside the owner:
- a key only report.json has (`"tuned_thresholds"`, `"decides_with"`, ...) anywhere
  outside a docstring;
- a key that is also an ordinary word (`"meta"`, `"dev"`, `"overall"`, `"macro_f1"`)
  where it indexes a report: `report["meta"]`, `rep.get("overall")`, `"dev" in report`
  (the subscripted expression names a report, `rep` or `meta`).
"""

import ast
import json
import re

import pytest

from conftest import ROOT, docstring_nodes
from kemo.errors import InputError
from kemo.run import report_file as R
from kemo.run.report_file import Meta, Report, Setting

OWNER = ROOT / "kemo" / "run" / "report_file.py"
META_KEYS = {n for n in Meta.__dataclass_fields__ if n != "extra"}
# Keys no other kemo file has: flagged wherever they are spelled.
OWN_KEYS = {s.value for s in Setting} | {R.MEAN} | META_KEYS - {
    "weights", "backend", "head", "cpu", "processes", "validation", "thresholds",
    "notes", "serve", "data_dir", "init_from", "val_rows", "train_rows",
    "zero_shot_languages"}  # also a dataset's method
# Keys that are ordinary words too: flagged where they index a report.
WORD_KEYS = {v for k, v in vars(R).items() if k.isupper() and isinstance(v, str)} \
    | {s.value for s in R.IntensityScore} | META_KEYS
REPORTISH = re.compile(r"report|^rep$|^meta$")



def _names(node) -> list[str]:
    """The identifiers along `a.b[c].get(d)`: what the indexed thing is called."""
    out = []
    while True:
        if isinstance(node, ast.Name):
            return out + [node.id]
        if isinstance(node, ast.Attribute):
            out.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.BoolOp):  # (report or {}).get(...)
            node = node.values[0]
        else:
            return out


def _key(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        else None


def _indexed(node):
    """(key, the indexed expression) for `x["k"]`, `x.get("k")`, `"k" in x`."""
    if isinstance(node, ast.Subscript):
        return _key(node.slice), node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("get", "setdefault", "pop") and node.args:
        return _key(node.args[0]), node.func.value
    if isinstance(node, ast.Compare) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
        return _key(node.left), node.comparators[0]
    return None, None


def literal_report_keys(source: str) -> list[tuple[int, str]]:
    """(line, key) for each report.json key `source` spells as a literal."""
    tree = ast.parse(source)
    skip = docstring_nodes(tree)
    for node in ast.walk(tree):  # the text pieces of an f-string
        if isinstance(node, ast.JoinedStr):
            skip |= {id(v) for v in node.values if isinstance(v, ast.Constant)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip and node.value in OWN_KEYS:
            found.add((node.lineno, node.value))
        key, indexed = _indexed(node)
        if key in WORD_KEYS and any(REPORTISH.search(n) for n in _names(indexed)):
            found.add((node.lineno, key))
    return sorted(found)


def test_the_scan_finds_a_report_key():
    """The check can fail: keys in code are found; docstrings, other dicts are not."""
    src = ('"""Reads report.json\'s "decides_with"."""\n'
           'def f(report, scores, state):\n'
           '    x = scores["overall"]["macro_f1"] + len("meta")\n'
           '    y = report["meta"].get("served_by"), state.report.get("dev")\n'
           '    if "dev" in report or f"{x}tuned_thresholds":\n'
           '        return rep["overall"], {"threshold_0.5": 1}\n')
    assert literal_report_keys(src) == [(4, "dev"), (4, "meta"), (4, "served_by"),
                                        (5, "dev"), (6, "overall"), (6, "threshold_0.5")]


def test_no_module_but_the_report_file_spells_a_report_key():
    offenders = []
    for path in sorted((ROOT / "kemo").rglob("*.py")):
        if path == OWNER:
            continue
        for line, key in literal_report_keys(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {key!r}")
    assert not offenders, "use kemo.run.report_file's names instead:\n" + "\n".join(offenders)


# ------------------------------------------------------------------ reading, writing

def _scores(labels, f1=0.5, n=10):
    return {R.N: n, R.PER_LABEL: {name: {"precision": f1, "recall": f1, "f1": f1,
                                        "support": 2} for name in labels},
            R.MACRO: {"precision": f1, "recall": f1, "f1": f1}}


def _section(labels, langs=("eng",)):
    return {R.OVERALL: _scores(labels), R.PER_LANGUAGE: {lg: _scores(labels) for lg in langs},
            R.MEAN: {R.MACRO_F1: 0.5, R.MICRO_F1: 0.5, R.LANGUAGES: len(langs)}}


LABELS = ["calm", "elated", "grim", "irked", "joy", "meh", "wary"]  # any names, any count


def test_a_report_of_any_label_set_writes_once_and_reads_back(tmp_path):
    splits = {split: {s: _section(LABELS, ("eng", "deu")) for s in Setting}
              for split in R.SPLITS}
    report = Report(splits, Meta(decides_with=Setting.PER_LANGUAGE, val_rows=10,
                                 resumed_after_epoch=None,
                                 per_language_thresholds={"eng": [0.5] * 7}))
    path = report.write(tmp_path)
    d = json.loads(path.read_text())
    assert list(d) == ["format_version", "validation", "dev", "meta"]
    assert d["format_version"] == R.FORMAT_VERSION == 2
    assert d["meta"] == {"decides_with": "per_language_thresholds",
                         "per_language_thresholds": {"eng": [0.5] * 7}, "val_rows": 10,
                         "resumed_after_epoch": None}  # null kept, unset fields absent
    back = Report.read(tmp_path, LABELS)
    assert back.to_dict() == d
    assert back.decides_with == Setting.PER_LANGUAGE
    assert back.macro_f1(R.DEV, Setting.GLOBAL, "deu") == 0.5
    assert back.language_labels() == {"eng": LABELS, "deu": LABELS}
    assert not list(tmp_path.glob("*.tmp*"))  # written whole, nothing left aside


def test_format_1_reads_and_a_newer_format_is_refused(tmp_path):
    labels = ["anger", "joy"]
    old = {split: {s: {R.OVERALL: _scores(labels)} for s in (Setting.AT_HALF, Setting.GLOBAL)}
           for split in R.SPLITS}
    old["meta"] = {"thresholds": [0.4, 0.6], "some_older_key": 1}  # no format_version: 1
    (tmp_path / "report.json").write_text(json.dumps(old))
    report = Report.read(tmp_path, labels)
    assert report.format_version == 1 and report.decides_with == Setting.GLOBAL
    assert report.meta.thresholds == [0.4, 0.6] and report.meta.extra == {"some_older_key": 1}
    assert report.to_dict() == old  # read as it is: nothing added to the file
    odd = {**old, "format_version": 1, "from_a_newer_kemo": [1]}
    odd.pop("meta")
    assert Report.from_dict(odd).to_dict() == odd  # unknown keys kept, nothing added
    (tmp_path / "report.json").write_text(json.dumps({**old, "format_version": 99}))
    with pytest.raises(InputError, match=r"report.json, field 'format_version': 99 is not a "
                                         r"report format this kemo reads \(1\.\.2"):
        Report.read(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["dev"].pop("tuned_thresholds"),
     r"field 'dev\.tuned_thresholds': missing"),
    (lambda d: d["validation"]["threshold_0.5"]["overall"]["per_label"].update(x={}),
     r"field 'validation\.threshold_0\.5\.overall\.per_label': unexpected label 'x'"),
    (lambda d: d["meta"].update(thresholds=[0.5]),
     r"field 'meta\.thresholds': 1 values, expected 2"),
    (lambda d: d["dev"]["tuned_thresholds"]["mean_over_languages"].update(macro_f1=2),
     r"field 'dev\.tuned_thresholds\.mean_over_languages\.macro_f1': 2 is not a finite"),
])
def test_a_bad_value_is_one_error_naming_the_file_and_key(tmp_path, edit, message):
    labels = ["anger", "joy"]
    d = {split: {s: _section(labels) for s in Setting} for split in R.SPLITS}
    d["meta"] = {}
    edit(d)
    (tmp_path / "report.json").write_text(json.dumps(d))
    with pytest.raises(InputError, match=f"^{re.escape(str(tmp_path))}/report.json, {message}"):
        Report.read(tmp_path, labels)


def test_an_intensity_report_reads_with_its_own_labels(tmp_path):
    split = {kind: {R.PER_LANGUAGE: {"eng": {R.R: 0.3, R.PER_LABEL: {"Joy": 0.3},
                                             R.ROWS: 4}}, R.MEAN_R: 0.3}
             for kind in R.IntensityScore}
    report = Report({R.VALIDATION: split}, Meta(decides_with=R.CUT_POINTS),
                    label_kind=R.INTENSITY, max_intensity=3)
    report.write(tmp_path)
    d = json.loads((tmp_path / "report.json").read_text())
    assert list(d) == ["format_version", "label_kind", "max_intensity", "validation", "meta"]
    back = Report.read(tmp_path)
    assert back.intensity and back.language_labels() == {"eng": ["Joy"]}
    d["validation"]["integer"]["mean_r"] = 1.5
    (tmp_path / "report.json").write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"field 'validation\.integer\.mean_r': 1\.5 is not"):
        Report.read(tmp_path)


def test_the_settings_are_one_table():
    assert [s.value for s in Setting] == ["threshold_0.5", "tuned_thresholds",
                                          "per_language_thresholds"]
    assert [s.column for s in Setting] == ["at 0.5", "global", "per-lang"]
    assert Setting.GLOBAL.how == "thresholds tuned on validation"
    assert json.dumps({Setting.AT_HALF: 1}) == '{"threshold_0.5": 1}'
    assert f"{Setting.PER_LANGUAGE}" == "per_language_thresholds"
