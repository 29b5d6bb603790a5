"""Ensemble weights searched on the validation split.

    kemo ensemble runs/mpnet runs/minilm --run-dir runs/ens --search-weights 0.1

Every weighting on a grid of the simplex (each member a multiple of `step`, at least one
`step`, the weights summing to 1) is scored on the members' shared validation rows
exactly as the ensemble would be: probabilities averaged with those weights
(`serving_weights`), thresholds tuned on validation as the config says, validation
macro-F1 at the setting the ensemble decides with (the mean of the languages' macro-F1
when it has several: the shared task's number, as `kemo runs` shows it). The best one
wins; ties go to the weighting closest to equal weights. Dev is never looked at, so the
ensemble's dev figure stays held out. The members' probabilities are computed once; each
candidate costs one threshold search (~0.4 s for 4,337 rows x 28 labels on 2 CPU cores).

Example:
    grid = weight_grid(3, 0.1)            # 36 weightings, e.g. (0.1, 0.1, 0.8)
    found = search_weights(members, parts, val, tcfg, names, step=0.1)
    found.weights, found.score, found.equal_score
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from kemo.errors import InputError
from kemo.evaluation.finish import finish
from kemo.prediction.ensemble_run import combine_probs, serving_weights
from kemo.run.report_file import MACRO_F1, MEAN, VALIDATION

MAX_CANDIDATES = 5000  # a grid larger than this is refused: choose a coarser step


@dataclass(frozen=True)
class WeightSearch:
    """The searched grid: every candidate's validation macro-F1 and the winner."""

    step: float
    setting: str  # the decision setting scored (`report_file.Setting` value)
    candidates: list  # [(weights tuple, validation macro-F1)], in the order scored
    weights: tuple  # the winner
    score: float
    equal_score: float | None  # equal weights' score, when the grid holds them

    def to_dict(self) -> dict:
        """The record `ensemble.json` keeps under `weight_search`."""
        return {"chosen_on": "validation", "step": self.step,
                "metric": f"validation macro-F1, mean over languages ({self.setting})",
                "score": self.score, "equal_weights_score": self.equal_score,
                "candidates": [{"weights": list(w), "macro_f1": s}
                               for w, s in self.candidates]}


def weight_grid(n: int, step: float) -> list[tuple]:
    """The weightings of `n` members on a grid of `step`: each weight a multiple of
    `step`, at least `step`, summing to 1; closest to equal weights first."""
    if not (0 < step <= 1):
        raise InputError(f"--search-weights: the step must be in (0, 1], got {step}")
    parts = round(1 / step)
    if abs(parts * step - 1) > 1e-6:
        raise InputError(f"--search-weights: the step must divide 1 (0.1, 0.05, 0.25, ...), "
                         f"got {step}")
    if parts < n:
        raise InputError(f"--search-weights: a step of {step} cannot give each of {n} members "
                         f"a weight of at least one step; use {1 / n:g} or less")
    count = _n_compositions(parts, n)
    if count > MAX_CANDIDATES:
        raise InputError(f"--search-weights: a step of {step} gives {count} weightings of {n} "
                         f"members, more than {MAX_CANDIDATES}; choose a coarser step")
    grid = [tuple(round(k * step, 10) for k in ks) for ks in _compositions(parts, n)]
    return sorted(grid, key=lambda w: (sum(abs(x - 1 / n) for x in w), w))


def _n_compositions(total: int, n: int) -> int:
    from math import comb

    return comb(total - 1, n - 1)


def _compositions(total: int, n: int):
    """Every way to write `total` as an ordered sum of `n` positive integers."""
    for cuts in itertools.combinations(range(1, total), n - 1):
        edges = (0, *cuts, total)
        yield tuple(b - a for a, b in zip(edges, edges[1:]))


def search_weights(members, parts, val, tcfg, label_names, serve: str = "average",
                   step: float = 0.1) -> WeightSearch:
    """Score every weighting of `weight_grid(len(members), step)` on `val` (members'
    `parts` from `EnsembleRun.member_probs` on `val`'s texts); return the best."""
    grid = weight_grid(len(members), step)
    n = len(members)
    scored, setting = [], None
    for w in grid:
        sw = serving_weights(members, list(w), label_names, val.langs, len(val), serve)
        fin = finish(tcfg, val, None, {"val": combine_probs(sw, parts, members, label_names)})
        setting = fin.decides_with
        scored.append((w, float(fin.splits[VALIDATION][setting][MEAN][MACRO_F1])))
    best_w, best = scored[0]
    for w, s in scored[1:]:  # strictly better only: ties keep the one nearer equal weights
        if s > best + 1e-12:
            best_w, best = w, s
    equal = next((s for w, s in scored if np.allclose(w, 1 / n)), None)
    return WeightSearch(step, str(setting), scored, best_w, best, equal)
