"""`kemo runs [DIR] [--json]` (issue 21): the runs under a folder, one line each, from
`run.json` when a run has one and from its other files when it predates the manifest.
That the command imports no framework is checked in tests/test_light_commands.py.
"""

import json
import shutil
from pathlib import Path

from conftest import run_cli
from kemo.run import layout as L


def _f1(report, split, setting):
    return report[split][setting]["overall"]["macro"]["f1"]


def _runs(folder):
    code, out, err = run_cli(["runs", folder, "--json"])
    assert code == 0, err
    return {row["name"]: row for row in json.loads(out)}


def test_lists_new_old_and_unfinished_runs(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "new")
    shutil.copytree(tiny_run, tmp_path / "old")
    (tmp_path / "old" / L.MANIFEST).unlink()  # as written before run.json existed
    shutil.copytree(tiny_run, tmp_path / "killed")
    for name in (L.MANIFEST, L.REPORT, L.THRESHOLDS):
        (tmp_path / "killed" / name).unlink()
    (tmp_path / "notes").mkdir()  # not a run: left out
    (tmp_path / "notes" / "todo.txt").write_text("x")

    rows = _runs(tmp_path)
    assert set(rows) == {"new", "old", "killed"}
    report = json.loads((tiny_run / L.REPORT).read_text())
    manifest = json.loads((tiny_run / L.MANIFEST).read_text())
    for name in ("new", "old"):
        r = rows[name]
        assert (r["config"], r["languages"], r["epochs"], r["kind"]) == ("tiny", ["eng"], 2,
                                                                         "train")
        assert r["status"] == "finished" and r["size"] > 0
        assert r["val_f1_05"] == _f1(report, "validation", "threshold_0.5")
        assert r["val_f1_tuned"] == _f1(report, "validation", "tuned_thresholds")
        assert r["dev_f1_05"] == _f1(report, "dev", "threshold_0.5")
        assert r["dev_f1_tuned"] == _f1(report, "dev", "tuned_thresholds")
    assert rows["new"]["manifest"] and rows["new"]["date"] == manifest["started"]
    assert not rows["old"]["manifest"] and rows["old"]["date"].endswith("Z")
    k = rows["killed"]
    assert k["status"] == "not finished" and k["epochs"] == 2 and k["dev_f1_tuned"] is None

    code, out, err = run_cli(["runs", tmp_path])
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["run", "date", "config"], out
    assert len(lines) == 4 and any(ln.startswith("killed ") and "not finished" in ln
                                   for ln in lines)
    assert f"{_f1(report, 'dev', 'tuned_thresholds'):.4f}" in out
    assert _runs(tmp_path / "new") == {"new": rows["new"]}  # one run directory itself


def _fake_run(path: Path, languages, report):
    path.mkdir(parents=True)
    (path / L.CONFIG).write_text(f'name = "multi"\n[data]\nlanguages = {json.dumps(languages)}\n')
    (path / L.REPORT).write_text(json.dumps(report))


def _section(f1s, overall, mean=True):
    s = {"overall": {"macro": {"f1": overall}},
         "per_language": {lang: {"macro": {"f1": f}} for lang, f in f1s.items()}}
    if mean:
        s["mean_over_languages"] = {"macro_f1": sum(f1s.values()) / len(f1s),
                                    "languages": len(f1s)}
    return s


def test_several_languages_show_the_mean_over_languages(tmp_path):
    """The shared task's number: each language's macro-F1, then the mean (not the pooled
    figure); a report from before the stored mean gets it computed."""
    f1s = {"eng": 0.25, "deu": 0.75}
    for name, mean in (("stored", True), ("computed", False)):
        split = {"threshold_0.5": _section(f1s, 0.9, mean),
                 "tuned_thresholds": _section(f1s, 0.9, mean)}
        _fake_run(tmp_path / name, ["eng", "deu"], {"validation": split, "dev": split})
    rows = _runs(tmp_path)
    for name in ("stored", "computed"):
        assert rows[name]["dev_f1_tuned"] == 0.5 and rows[name]["val_f1_05"] == 0.5, name
        assert rows[name]["languages"] == ["eng", "deu"] and rows[name]["epochs"] is None


def test_an_intensity_run_shows_pearson_r(tmp_path):
    """A Track B run: the metric column says Pearson r; "@0.5" holds the mean r of the
    continuous scores, "tuned" the mean r of the integers at the tuned cut points."""
    def split(cont, integer):
        return {"continuous": {"mean_r": cont, "per_language": {}},
                "integer": {"mean_r": integer, "per_language": {}}}
    _fake_run(tmp_path / "tb", ["eng", "esp"], {"label_kind": "intensity", "max_intensity": 3,
                                              "validation": split(0.61, 0.63),
                                              "dev": split(0.55, 0.57)})
    _fake_run(tmp_path / "ta", ["eng"], {"validation": {"tuned_thresholds": _section(
        {"eng": 0.7}, 0.7)}})
    rows = _runs(tmp_path)
    tb, ta = rows["tb"], rows["ta"]
    assert (tb["metric"], tb["val_f1_05"], tb["val_f1_tuned"], tb["dev_f1_05"],
            tb["dev_f1_tuned"]) == ("pearson r", 0.61, 0.63, 0.55, 0.57)
    assert ta["metric"] == "macro-F1" and ta["val_f1_tuned"] == 0.7
    code, out, err = run_cli(["runs", tmp_path])
    line = next(ln for ln in out.splitlines() if ln.startswith("tb "))
    assert "pearson r" in line and "0.5700" in line


def test_refuses_a_missing_folder_in_one_line(tmp_path):
    code, out, err = run_cli(["runs", tmp_path / "nope"])
    assert code == 2 and err.strip().splitlines() == [f"error: {tmp_path / 'nope'}: not found "
                                                     "(give the folder your runs are in)"]
    code, out, err = run_cli(["runs", tmp_path])
    assert code == 0 and out.startswith("no runs in "), out
