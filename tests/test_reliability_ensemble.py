"""A hand-edited ensemble.json is checked as the build step checks its arguments
(issue 20): a member listed twice, the ensemble itself, or another ensemble as a member
is refused in one line naming the field, at once (no recursion)."""

import time

from _reliability import hand_built_ensemble, kemo, refused


def test_member_listed_twice_is_refused(tiny_run, tmp_path):
    ens = hand_built_ensemble(tiny_run, tmp_path / "ens", [tiny_run, tiny_run])
    rc, out, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, ens / "ensemble.json", "members.1.path", "listed twice")
    assert "predicted" not in out


def test_ensemble_listing_itself_is_refused_at_once(tiny_run, tmp_path):
    ens = hand_built_ensemble(tiny_run, tmp_path / "ens", [tiny_run, tmp_path / "ens"])
    started = time.time()
    rc, _, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, ens / "ensemble.json", "members.1.path", "this ensemble itself")
    assert time.time() - started < 60


def test_ensemble_listing_itself_by_a_relative_path_is_refused(tiny_run, tmp_path):
    ens = hand_built_ensemble(tiny_run, tmp_path / "ens", [tiny_run, "."])
    rc, _, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, "this ensemble itself")


def test_nested_ensemble_is_refused(tiny_run, tmp_path):
    inner = hand_built_ensemble(tiny_run, tmp_path / "inner", [tiny_run])
    outer = hand_built_ensemble(tiny_run, tmp_path / "outer", [tiny_run, inner])
    rc, _, err = kemo("predict", outer, "--text", "I am so happy")
    refused(rc, err, outer / "ensemble.json", "itself an ensemble")
