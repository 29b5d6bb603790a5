"""`kemo ensemble --search-weights`: the weighting grid and the search on synthetic
members (an informative member must outweigh an anti-informative one). The search end to
end on two tiny runs: tests/test_ensemble.py."""

from types import SimpleNamespace

import numpy as np
import pytest

from kemo.errors import InputError
from kemo.ensemble_weights import search_weights, weight_grid
from conftest import ROOT


def test_the_grid_sums_to_one_gives_each_member_a_step_and_starts_near_equal():
    two, three = weight_grid(2, 0.1), weight_grid(3, 0.1)
    assert len(two) == 9 and len(three) == 36
    assert two[0] == (0.5, 0.5) and set(two) >= {(0.1, 0.9), (0.9, 0.1)}
    for w in three:
        assert abs(sum(w) - 1) < 1e-9 and min(w) >= 0.1 - 1e-9
    assert len(set(three)) == 36
    assert weight_grid(4, 0.25) == [(0.25, 0.25, 0.25, 0.25)]


@pytest.mark.parametrize("n,step,says", [
    (2, 0.3, "must divide 1"), (3, 0.5, "at least one step"), (2, 0, "in (0, 1]"),
    (6, 0.01, "choose a coarser step"),
])
def test_a_bad_step_is_refused(n, step, says):
    with pytest.raises(InputError, match="--search-weights") as e:
        weight_grid(n, step)
    assert says in str(e.value)


def _members_and_val(rows=400, seed=0):
    from kemo.config import load_config
    from kemo.data.examples import Examples

    rng = np.random.default_rng(seed)
    names = ("joy", "sadness", "anger")
    labels = (rng.random((rows, 3)) < 0.3).astype("float32")
    val = Examples(np.array([str(i) for i in range(rows)]), np.array(["t"] * rows),
                   np.array(["eng"] * rows), labels, np.ones_like(labels), names)
    cfg = load_config(ROOT / "configs" / "tiny.toml")
    members = [SimpleNamespace(label_names=list(names), config=cfg) for _ in range(2)]
    good = np.clip(0.6 * labels + 0.4 * rng.random(labels.shape), 0, 1)  # informative
    bad = np.clip(0.6 * (1 - labels) + 0.4 * rng.random(labels.shape), 0, 1)  # inverted
    everyone = np.arange(rows)
    return members, val, cfg, list(names), good, bad, everyone


def test_the_search_weighs_the_informative_member_up_whichever_place_it_has():
    members, val, cfg, names, good, bad, rows = _members_and_val()
    for parts, good_at in ([(rows, good), (rows, bad)], 0), ([(rows, bad), (rows, good)], 1):
        found = search_weights(members, parts, val, cfg.thresholds, names, step=0.1)
        assert found.weights[good_at] == 0.9, found.weights
        assert found.score == max(s for _, s in found.candidates)
        assert found.equal_score is not None and found.score > found.equal_score
        record = found.to_dict()
        assert record["chosen_on"] == "validation" and len(record["candidates"]) == 9


def test_several_languages_are_scored_by_the_mean_of_their_macro_f1():
    """The shared task's number: each language's macro-F1, then the mean (the pooled
    figure differs when the languages do)."""
    from kemo.evaluation.finish import finish
    from kemo.run.report_file import VALIDATION

    members, val, cfg, names, good, bad, rows = _members_and_val()
    val.langs[::3] = "deu"
    mixed = np.where((np.arange(len(val)) % 3 == 0)[:, None], bad, good)  # worse on deu
    found = search_weights(members, [(rows, mixed), (rows, good)], val, cfg.thresholds, names,
                           step=0.5)
    report = finish(cfg.thresholds, val, None, {"val": 0.5 * mixed + 0.5 * good}).splits[
        VALIDATION][found.setting]
    per_lang = [r["macro"]["f1"] for r in report["per_language"].values()]
    assert found.candidates[0][0] == (0.5, 0.5) and len(per_lang) == 2
    assert found.candidates[0][1] == pytest.approx(np.mean(per_lang), abs=1e-12)
    assert abs(report["overall"]["macro"]["f1"] - np.mean(per_lang)) > 1e-4


def test_ties_keep_the_weighting_nearest_equal():
    members, val, cfg, names, good, _, rows = _members_and_val()
    found = search_weights(members, [(rows, good), (rows, good)], val, cfg.thresholds, names,
                           step=0.25)  # identical members: every weighting scores the same
    assert found.weights == (0.5, 0.5)
    assert len({s for _, s in found.candidates}) == 1
