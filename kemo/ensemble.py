"""Ensembles: several finished runs averaged into one run.

    kemo ensemble runs/minilm runs/e5 runs/mpnet --run-dir runs/ens [--weights 1 1 2]
    kemo ensemble runs/mpnet runs/minilm --run-dir runs/ens --search-weights 0.1

The members' sigmoid probabilities are averaged (weighted, weights normalised to sum
to 1; given, or searched on validation by `kemo.ensemble_weights`). Members
may be trained on different languages and label sets (the 28-language e5 run with an
English-only MPNet run): each row of a language is averaged over the
members trained on it, each label over the members predicting it
(`kemo.prediction.ensemble_run.serving_weights`); a text of no member's language, or of
none given, over all of them. Thresholds are tuned again on the validation rows the
members share (`kemo.prediction.ensemble_data`: re-created from
each member's config; members of the same languages validated on different rows are
refused, naming what differs; members of different languages share, per language, the
rows every covering member validated on), globally and per language; the ensemble
decides per language when the first member's config says
`thresholds.per_language = true`. The ensemble's run directory holds `ensemble.json`
(members, weights, languages), `config.toml` (the first member's data settings, with
every member's languages), and, as a trained run, `thresholds.json`, `report.json`
(the ensemble and each member side by side, on its own languages' rows;
`meta.served_by`: which members served which language), `predictions_val.csv`,
`predictions_dev.csv` and `predictions/dev/` (the official pred_<lang>.csv layout).
`kemo.prediction.predictor.load_predictor` returns an `EnsembleRun` for it, so `predict`,
`evaluate`, `report`, `explain` and `export` take it like any run.

Example:
    result = build_ensemble(["runs/a", "runs/b"], "runs/ab")
    run = load_predictor("runs/ab")            # an EnsembleRun
    probs, decisions = run.predict(["I am so happy today!"])
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from kemo.atomic import write_text
from kemo.config import dump_config
from kemo.errors import InputError
from kemo.evaluation.finish import finish, write_decisions
from kemo.run import layout as L
from kemo.run.lock import RunLock
from kemo.run.manifest import write_manifest
from kemo.run.report_file import DEV, VALIDATION, Meta, Report
from kemo.run.ensemble_file import ENSEMBLE_FILE, FORMAT, is_ensemble_dir, member_identity
from kemo.prediction.ensemble_run import (SERVE_MODES, EnsembleRun, combine_probs,
                                          member_languages, serving_weights, union_labels)
from kemo.ensemble_weights import search_weights, weight_grid
from kemo.prediction.thresholds import ThresholdSearch
from kemo.prediction.ensemble_data import ensemble_data
from kemo.run.verdict import check_new_run_dir, clear_run_dir

log = logging.getLogger(__name__)


def _check_weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise InputError(f"--weights: {len(weights)} values for {n} members")
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise InputError(f"--weights: expected finite values >= 0 with a positive sum, "
                         f"got {weights}")
    return [w / sum(weights) for w in weights]


def build_ensemble(member_dirs, run_dir, weights=None, data_dir=None,
                   batch_size: int = 64, overwrite: bool = False,
                   serve: str = "average", per_language: bool | None = None,
                   search_step: float | None = None) -> dict:
    """Average `member_dirs`, tune thresholds on their shared validation rows, report
    on dev, and write the ensemble run directory `run_dir`. Returns its report
    (`format_ensemble_report` renders it; progress goes to the `kemo.ensemble` logger).

    Members may be trained on different languages: each row is averaged over the
    members trained on its language (`serving_weights`), and the report's
    `meta.served_by` says which members served which language. `serve="specialist"`:
    of those, only the members trained on the fewest languages (`covering_members`).
    `per_language` (None: as the first member's config says) sets
    `thresholds.per_language` of the ensemble. `search_step` (instead of `weights`):
    the weights are searched on validation on a grid of that step
    (`kemo.ensemble_weights`); `ensemble.json` keeps the search.
    """
    started = time.time()
    paths = [Path(p) for p in member_dirs]
    if search_step is not None and weights is not None:
        raise InputError("--weights and --search-weights: give one, not both")
    weights = _check_weights(weights, len(paths)) if len(paths) >= 2 else None
    if search_step is not None and len(paths) >= 2:
        weight_grid(len(paths), search_step)  # a bad step fails before any model loads
    run_dir = Path(run_dir)
    if serve not in SERVE_MODES:
        raise InputError(f"--serve: expected one of {', '.join(SERVE_MODES)}, got {serve!r}")
    members = _open_members(paths, run_dir, overwrite)
    if per_language is not None:  # the ensemble's config is the first member's
        first = members[0].config
        members[0] = dataclasses.replace(members[0], config=dataclasses.replace(
            first, thresholds=dataclasses.replace(first.thresholds, per_language=per_language)))
    data = ensemble_data(members, paths, data_dir, serve)
    ens = EnsembleRun(run_dir, None, members, weights, ThresholdSearch.untuned(
        union_labels(members)), serve=serve)
    log.info(f"ensemble of {len(members)} runs on {len(data.val)} validation"
             f"{f' and {len(data.dev)} dev' if data.dev is not None else ''} rows; weights "
             + (f"searched on validation (step {search_step:g})" if search_step is not None
                else ", ".join(f"{w:.3f}" for w in weights)))
    for note in data.notes:
        log.info(f"  {note}")
    splits = {split: ex for split, ex in (("val", data.val), ("dev", data.dev)) if ex is not None}
    parts = {}
    for split, ex in splits.items():
        t0 = time.time()
        _, parts[split] = ens.member_probs(ex.texts, batch_size, langs=ex.langs)
        log.info(f"  {split}: {len(ex)} rows predicted in {time.time() - t0:.1f}s")
    search = None
    if search_step is not None:
        weights, search = _search(members, parts, data, ens.label_names, serve, search_step)
    probs = {split: combine_probs(serving_weights(members, weights, ens.label_names, ex.langs,
                                                  len(ex), serve),
                                  parts[split], members, ens.label_names)
             for split, ex in splits.items()}  # averaged once, with the weights decided
    report, fin = _finish_report(members, paths, weights, data, probs, parts, started, serve)
    _write_ensemble_dir(run_dir, members, paths, weights, data, probs, report, fin, overwrite,
                        serve, search)
    return report.to_dict()


def _search(members, parts, data, label_names, serve, step):
    """The weights searched on validation (`search_weights`), logged; (weights, search)."""
    t0 = time.time()
    found = search_weights(members, parts["val"], data.val, members[0].config.thresholds,
                           label_names, serve, step)
    equal = ("" if found.equal_score is None
             else f"; equal weights: {found.equal_score:.4f}")
    log.info(f"weights searched on validation ({len(found.candidates)} weightings, step "
             f"{step:g}, {time.time() - t0:.1f}s): " + ", ".join(f"{w:.3f}" for w in found.weights)
             + f" (validation macro-F1 {found.score:.4f}{equal}; dev not looked at)")
    return list(found.weights), found


def _open_members(paths, run_dir, overwrite: bool = False):
    """The member runs, loaded, after the arguments and the run directory are checked."""
    from kemo.prediction.trained_run import load_run

    if len(paths) < 2:
        raise InputError("an ensemble needs at least two member runs")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("the same member run is given twice")
    if run_dir.resolve() in {p.resolve() for p in paths}:
        raise InputError(f"--run-dir {run_dir}: is one of the members")
    check_new_run_dir(run_dir, overwrite, command="ensemble")  # also: a writer holds it
    nested = next((p for p in paths if is_ensemble_dir(p)), None)
    if nested is not None:
        raise InputError(f"member {nested}: is itself an ensemble: list its members instead")
    members = []
    for p in paths:
        try:
            members.append(load_run(p))
        except InputError as e:
            raise InputError(f"member {p}: {e}" if str(p) not in str(e) else str(e)) from None
    return members


def _member_view(member, ex, part):
    """`ex` restricted to the rows of the member's languages that it served (all of them
    unless a specialist served some instead), with its labels, and its probabilities
    there (from its `part` of `EnsembleRun.member_probs`)."""
    from kemo.data.examples import align_labels

    need, p = part
    rows = np.intersect1d(np.flatnonzero(np.isin(ex.langs, member_languages(member))), need)
    return align_labels(ex.subset(rows), member.label_names), p[np.searchsorted(need, rows)]


def _finish_report(members, paths, weights, data, probs, parts, started, serve):
    """Thresholds tuned as the members' config says, the ensemble's report beside each
    member's (on the rows of its own languages); returns (Report, its Finish)."""
    from kemo.evaluation.classification_scores import full_report

    val, dev = data.val, data.dev
    # The first member's thresholds table, as training reads it (members share it).
    fin = finish(members[0].config.thresholds, val, dev, probs)
    scores = {}
    for k, (m, p) in enumerate(zip(members, paths)):
        own = m.thresholds.global_only()  # each member's thresholds, as tuned on this split
        val_m, pv = _member_view(m, val, parts["val"][k])
        own_per_lang = own.tuned_per_language(pv, val_m.labels, val_m.mask, val_m.langs)
        mine = {VALIDATION: full_report(val_m, pv, own, own_per_lang)}
        if dev is not None:
            dev_m, pd_ = _member_view(m, dev, parts["dev"][k])
            mine[DEV] = full_report(dev_m, pd_, own, own_per_lang)
        scores[str(p)] = mine
    meta = Meta(ensemble_of=[str(p) for p in paths], weights=weights, val_rows=len(val),
                total_seconds=round(time.time() - started, 1),
                served_by={lang: [str(paths[k]) for k in ks]
                           for lang, ks in data.served_by.items()},
                serve=serve, **fin.meta_fields())
    return Report(fin.splits, meta, members=scores), fin


def _write_ensemble_dir(run_dir, members, paths, weights, data, probs, report, fin,
                        overwrite: bool = False, serve: str = "average", search=None):
    """Write the ensemble's run directory under its lock, each file whole or absent,
    `report.json` last (the mark of a finished run)."""
    languages = list(data.served_by)
    first = members[0].config
    cfg = dataclasses.replace(first, name=run_dir.name,
                              data=dataclasses.replace(first.data, languages=languages))
    mixed = languages != member_languages(members[0])
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):  # one writer: a second ensemble or training is refused
        if check_new_run_dir(run_dir, overwrite, "ensemble", locked=True):  # again, locked
            clear_run_dir(run_dir)
        write_manifest(run_dir, "ensemble")
        write_text(run_dir / L.CONFIG,
                   f"# kemo ensemble of {len(paths)} runs ({', '.join(p.name for p in paths)}): "
                   f"{ENSEMBLE_FILE} lists them.\n# The members' shared data settings "
                   "(languages, validation split), which predict and report read"
                   + (";\n# data.languages: every member's languages (each member's own "
                      "config.toml says how it split them)" if mixed else "")
                   + ".\n" + dump_config(cfg))
        write_text(run_dir / ENSEMBLE_FILE, json.dumps({
            "format": FORMAT, "label_names": union_labels(members),
            "members": [{"path": str(p.resolve()), "weight": w,
                         "languages": member_languages(m), "identity": member_identity(p)}
                        for p, w, m in zip(paths, weights, members)],
            **({"serve": serve} if serve != "average" else {}),
            **({"weight_search": search.to_dict()} if search is not None else {}),
        }, indent=1))
        write_decisions(run_dir, fin, data.val, data.dev, probs, data.dataset)
        report.write(run_dir)  # last: its presence marks a finished run
        write_manifest(run_dir, "ensemble", finished=True)
