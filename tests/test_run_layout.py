"""One owner of the run directory's file names (issue 21): `kemo/run/layout.py`.

Every other module imports the names (`run_dir / L.REPORT`); this test scans kemo's
source and fails on a file name of a run spelled as a string literal elsewhere: a name
with an extension (`"report.json"`) anywhere outside a docstring, and a folder name
(`"predictions"`, `"checkpoints"`...) used as a path part (`run_dir / "checkpoints"`),
since the bare words are also dictionary keys and messages.
"""

import ast
from pathlib import Path

from conftest import ROOT, docstring_nodes
from kemo.run import layout as L

OWNER = ROOT / "kemo" / "run" / "layout.py"
NAMES = {v for k, v in vars(L).items() if k.isupper() and isinstance(v, str)}
FILE_NAMES = {n for n in NAMES if "." in n}  # config.toml, .lock, ...
FOLDER_NAMES = NAMES - FILE_NAMES  # predictions, checkpoints, ...



def literal_run_names(source: str) -> list[tuple[int, str]]:
    """(line, name) for each run-file name `source` spells as a literal."""
    tree = ast.parse(source)
    skip = docstring_nodes(tree)
    for node in ast.walk(tree):  # the text pieces of an f-string: f".{name}.lock"
        if isinstance(node, ast.JoinedStr):
            skip |= {id(v) for v in node.values if isinstance(v, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skip and node.value in FILE_NAMES:
            found.append((node.lineno, node.value))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) \
                and isinstance(node.right, ast.Constant) and node.right.value in FOLDER_NAMES:
            found.append((node.lineno, node.right.value))
    return sorted(found)


def test_the_layout_names_every_run_file_once():
    assert {"config.toml", "history.csv", "history.json", "label_distribution.json",
            "thresholds.json", "report.json", "predictions_val.csv", "predictions_dev.csv",
            "predictions", "model.keras", "preprocessor", "tokens", "checkpoints", ".lock",
            "ensemble.json", "vocabulary_keep.npy", "run.json", "report",
            "export"} <= NAMES
    assert set(L.FILES) == NAMES, "every name has a one-line description in FILES"
    assert len(NAMES) == len([k for k, v in vars(L).items() if k.isupper()
                              and isinstance(v, str)]), "two constants share a name"


def test_the_scan_finds_a_literal():
    """The check can fail: literals in code are found, docstrings and dict keys are not."""
    src = ('"""Writes report.json."""\n'
           'def f(run_dir):\n'
           '    """Reads "config.toml"."""\n'
           '    x = {"predictions": 1}\n'
           '    (run_dir / "checkpoints").mkdir()\n'
           '    print(f"{run_dir / \'model.keras\'}: bad", f".{x}.lock")\n'
           '    return run_dir / "report.json"\n')
    assert literal_run_names(src) == [(5, "checkpoints"), (6, "model.keras"),
                                      (7, "report.json")]


def test_no_module_but_the_layout_spells_a_run_file_name():
    offenders = []
    for path in sorted((ROOT / "kemo").rglob("*.py")):
        if path == OWNER:
            continue
        for line, name in literal_run_names(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {name!r}")
    assert not offenders, "use kemo.run.layout's names instead:\n" + "\n".join(offenders)
