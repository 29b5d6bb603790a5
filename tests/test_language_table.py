"""benchmarks/language_table.py: a language one run did not score reads `-`, not `nan`."""

from conftest import load_benchmark


def _module():
    return load_benchmark("language_table")


def _report(scores: dict) -> dict:
    split = {"tuned_thresholds": {"per_language": {
        lang: {"n": 100, "macro": {"f1": f1}} for lang, f1 in scores.items()}}}
    split["threshold_0.5"] = split["tuned_thresholds"]
    return {"meta": {"decides_with": "tuned_thresholds"}, "dev": split, "validation": split}


def test_a_missing_language_is_a_dash():
    table = _module().table([("full", None, _report({"eng": 0.7, "deu": 0.6})),
                             ("capped", None, _report({"eng": 0.5}))])
    assert "nan" not in table
    deu = next(ln for ln in table.splitlines() if ln.startswith("| deu |"))
    cells = [c.strip() for c in deu.strip("|").split("|")]
    assert cells[:6] == ["deu", "100", "0.6000", "0.6000", "0.6000", "-"], cells
