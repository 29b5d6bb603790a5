"""Ensembles: several finished runs averaged into one run.

    kemo ensemble runs/minilm runs/e5 runs/mpnet --run-dir runs/ens [--weights 1 1 2]

The members' sigmoid probabilities are averaged (weighted, weights normalised to sum
to 1); per-label thresholds are tuned again on the validation split the members share
(re-created from each member's config; members validated on different rows are
refused, naming what differs), globally and per language; the ensemble decides per
language when the first member's config says `thresholds.per_language = true`. The
ensemble's run directory holds `ensemble.json`
(members and weights), `config.toml` (the first member's: data settings), and, as a
trained run, `thresholds.json`, `report.json` (the ensemble and each member side by
side), `predictions_val.csv`, `predictions_dev.csv` and `predictions/dev/` (the
official pred_<lang>.csv layout). `kemo.runs.load_run` returns an
`EnsembleRun` for it, so `predict`, `evaluate`, `report`, `explain` and `export` take
it like any run.

Example:
    result = build_ensemble(["runs/a", "runs/b"], "runs/ab")
    run = load_run("runs/ab")                  # an EnsembleRun
    probs, decisions = run.predict(["I am so happy today!"])
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kemo.errors import InputError
from kemo.run import layout as L
from kemo.thresholds import ThresholdSearch, tune_on_validation

ENSEMBLE_FILE = L.ENSEMBLE
FORMAT = "kemo-ensemble"


@dataclass
class EnsembleRun:
    """A finished ensemble: the member runs, their weights and the tuned thresholds.

    Same interface as `kemo.runs.Run` for everything that only predicts (`config`,
    `label_names`, `thresholds`, `decide`, `predict_probs`, `predict`).
    """

    path: Path
    config: object  # the first member's Config (data settings)
    members: list
    weights: list[float]
    thresholds: ThresholdSearch
    language_labels: dict = field(default_factory=dict)  # as `kemo.runs.Run`'s

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds.label_names)

    def predict_probs(self, texts, batch_size: int = 64, rows=None) -> np.ndarray:
        """The weighted mean of the members' sigmoid probabilities (each member's
        checked finite, naming its model file and the first bad row: `rows`)."""
        return average_probs([m.predict_probs(texts, batch_size, rows) for m in self.members],
                             self.weights)

    def decide(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions at the ensemble's thresholds, as `kemo.runs.Run.decide`."""
        return self.thresholds.apply(probs, langs)

    def predict(self, texts, batch_size: int = 64, langs=None) -> tuple[np.ndarray, np.ndarray]:
        probs = self.predict_probs(texts, batch_size)
        return probs, self.decide(probs, langs)


def average_probs(member_probs, weights=None) -> np.ndarray:
    """Weighted mean over members of (n, labels) probability arrays."""
    stacked = np.stack([np.asarray(p, "float64") for p in member_probs])
    w = np.ones(len(stacked)) if weights is None else np.asarray(weights, "float64")
    return (np.tensordot(w / w.sum(), stacked, axes=1)).astype("float32")


def is_ensemble_dir(path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


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


def read_ensemble_file(path) -> dict:
    """`ensemble.json`, validated: the ensemble's label names, member paths (resolved
    against the ensemble directory) and weights; InputError naming the file and field."""
    from kemo import run_files as rf

    file = Path(path) / ENSEMBLE_FILE
    d = rf.read_json(file)
    if d.get("format") != FORMAT:
        raise InputError(f"{rf.where(file, 'format')}: expected {FORMAT!r}")
    names = rf.label_names(rf.field(d, "label_names", file, list), file, "label_names")
    members = rf.field(d, "members", file, list)
    if not members:
        raise InputError(f"{rf.where(file, 'members')}: expected at least one member")
    view = {"members": {str(i): m for i, m in enumerate(members)}}  # named members.<i>
    paths, weights = [], []
    for i in view["members"]:
        member = rf.field(view, ("members", i, "path"), file, str)
        paths.append(Path(member) if Path(member).is_absolute()
                     else (Path(path) / member).resolve())
        weights.append(rf.number(view, ("members", i, "weight"), file, lo=0.0))
    if sum(weights) <= 0:
        raise InputError(f"{rf.where(file, 'members')}: the weights sum to 0")
    me = Path(path).resolve()
    seen: dict[Path, str] = {}
    for i, p in zip(view["members"], paths):
        here = rf.where(file, ("members", i, "path"))
        if p.resolve() == me:
            raise InputError(f"{here}: {p} is this ensemble itself")
        if is_ensemble_dir(p):
            raise InputError(f"{here}: {p} is itself an ensemble: list its members instead")
        if p.resolve() in seen:
            raise InputError(f"{here}: {p} is listed twice (also members.{seen[p.resolve()]}); "
                             "give it a larger weight instead")
        seen[p.resolve()] = i
    return {"label_names": names, "paths": paths, "weights": [w / sum(weights) for w in weights]}


def load_ensemble(run_dir) -> EnsembleRun:
    """Load an ensemble run directory written by `build_ensemble` (members included)."""
    from kemo.runs import language_labels, load_run, read_run_state

    path = Path(run_dir)
    meta = read_ensemble_file(path)
    state = read_run_state(path)  # config, thresholds.json against ensemble.json's labels
    members = [load_run(p) for p in meta["paths"]]
    names = _shared_label_names(members, meta["paths"])
    if names != meta["label_names"]:
        raise InputError(f"{path / ENSEMBLE_FILE}, field 'label_names': "
                         f"{', '.join(meta['label_names'])}, but the members predict "
                         f"{', '.join(names)}")
    return EnsembleRun(path, state.config, members, meta["weights"], state.thresholds,
                       language_labels(state.report))


def _shared_label_names(members, paths) -> list[str]:
    names = members[0].label_names
    for m, p in zip(members[1:], paths[1:]):
        if m.label_names != names:
            raise InputError(f"member {p}: labels {', '.join(m.label_names)} differ from "
                             f"{paths[0]}'s ({', '.join(names)})")
    return names


# Config keys that decide which training rows become the validation split.
_SPLIT_KEYS = ("data.languages", "data.max_train_examples",
               "data.max_train_examples_per_language", "data.val_fraction",
               "data.split_seed (or train.seed)")


def _split_settings(cfg) -> tuple:
    from kemo.data.splits import split_seed

    return (list(cfg.data.languages), cfg.data.max_train_examples,
            cfg.data.max_train_examples_per_language, cfg.data.val_fraction, split_seed(cfg))


def check_same_validation(members, paths, vals) -> None:
    """Refuse members whose validation splits differ, naming the config keys (or ids)."""
    first = vals[0]
    for m, p, v in zip(members[1:], paths[1:], vals[1:]):
        if list(v.ids) == list(first.ids):
            continue
        keys = [k for k, a, b in zip(_SPLIT_KEYS, _split_settings(members[0].config),
                                     _split_settings(m.config)) if a != b]
        differs = (f"config {', '.join(f'{k}' for k in keys)} differ"
                   if keys else "the training files differ")
        only = len(set(v.ids) ^ set(first.ids))
        fix = ("train the members on the same data.languages"
               if list(m.config.data.languages) != list(members[0].config.data.languages)
               else f"set {', '.join(keys)} alike" if keys else "train them on the same files")
        raise InputError(
            f"member {p}: validated on other rows than {paths[0]} ({len(v)} vs {len(first)} "
            f"rows, {only} ids in only one of them; {differs}): an ensemble's thresholds are "
            f"tuned on the validation split its members share ({fix})")


def build_ensemble(member_dirs, run_dir, weights=None, data_dir=None, batch_size: int = 64,
                   log=print) -> dict:
    """Average `member_dirs`, tune thresholds on their shared validation split, report
    on dev, and write the ensemble run directory `run_dir`. Returns its report."""
    from kemo.atomic import write_text
    from kemo.config import dump_config
    from kemo.data.splits import load_data
    from kemo.report import format_language_table, full_report
    from kemo.run.manifest import write_manifest
    from kemo.run_lock import RunLock, check_unlocked
    from kemo.runs import load_run
    from kemo.split_predictions import write_split_predictions, write_split_submission

    started = time.time()
    paths = [Path(p) for p in member_dirs]
    if len(paths) < 2:
        raise InputError("an ensemble needs at least two member runs")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("the same member run is given twice")
    weights = _check_weights(weights, len(paths))
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        if run_dir.is_dir():
            check_unlocked(run_dir)  # another writer holds it: name its process
        raise InputError(f"run directory {run_dir}: exists and is not empty")
    members = [load_run(p) for p in paths]
    if any(isinstance(m, EnsembleRun) for m in members):
        raise InputError("a member is itself an ensemble: list its members instead")
    names = _shared_label_names(members, paths)
    splits = [load_data(m.config, data_dir) for m in members]
    check_same_validation(members, paths, [s.val for s in splits])
    val, dev = splits[0].val, splits[0].dev

    log(f"ensemble of {len(members)} runs on {len(val)} validation"
        f"{f' and {len(dev)} dev' if dev is not None else ''} rows; weights "
        + ", ".join(f"{w:.3f}" for w in weights))
    probs = {"val": [], "dev": []}
    for m, p in zip(members, paths):
        t0 = time.time()
        probs["val"].append(m.predict_probs(val.texts, batch_size))
        if dev is not None:
            probs["dev"].append(m.predict_probs(dev.texts, batch_size))
        log(f"  {p}: predicted in {time.time() - t0:.1f}s")
    ens = {k: average_probs(v, weights) for k, v in probs.items() if v}
    tcfg = members[0].config.thresholds  # the members' shared setting, as training reads it
    search, per_lang = tune_on_validation(ens["val"], val, tcfg.tune)
    decides = "threshold_0.5" if not tcfg.tune else (
        "per_language_thresholds" if tcfg.per_language else "tuned_thresholds")
    decide = per_lang if decides == "per_language_thresholds" else search

    report = {"validation": full_report(val, ens["val"], search, per_lang)}
    if dev is not None:
        report["dev"] = full_report(dev, ens["dev"], search, per_lang)
    report["members"] = {}
    for m, p, pv, pd_ in zip(members, paths, probs["val"], probs["dev"] or [None] * len(paths)):
        own = m.thresholds.global_only()  # each member's thresholds, as tuned on this split
        own_per_lang = own.tuned_per_language(pv, val.labels, val.mask, val.langs)
        report["members"][str(p)] = {
            "validation": full_report(val, pv, own, own_per_lang),
            **({"dev": full_report(dev, pd_, own, own_per_lang)} if dev is not None else {})}
    report["meta"] = {"ensemble_of": [str(p) for p in paths], "weights": weights,
                      "val_rows": len(val), "total_seconds": round(time.time() - started, 1),
                      "decides_with": decides,
                      "per_language_thresholds": per_lang.per_language}

    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):  # one writer: a second ensemble or training is refused
        if any(p.name != L.LOCK for p in run_dir.iterdir()):  # written since the check
            raise InputError(f"run directory {run_dir}: exists and is not empty")
        write_manifest(run_dir, "ensemble")
        cfg = dataclasses.replace(members[0].config, name=run_dir.name)
        write_text(run_dir / L.CONFIG,  # each file whole or absent
                   f"# kemo ensemble of {len(paths)} runs ({', '.join(p.name for p in paths)}): "
                   f"{ENSEMBLE_FILE} lists them.\n# The members' shared data settings "
                   "(languages, validation split), which predict and report read.\n"
                   + dump_config(cfg))
        write_text(run_dir / ENSEMBLE_FILE, json.dumps({
            "format": FORMAT, "label_names": names,
            "members": [{"path": str(p.resolve()), "weight": w}
                        for p, w in zip(paths, weights)],
        }, indent=1))
        write_text(run_dir / L.THRESHOLDS, json.dumps(decide.to_dict(), indent=2))
        write_split_predictions(run_dir / L.PREDICTIONS_VAL, val, ens["val"], decide)
        if dev is not None:
            write_split_predictions(run_dir / L.PREDICTIONS_DEV, dev, ens["dev"], decide)
            write_split_submission(run_dir / L.PREDICTIONS / "dev", dev, ens["dev"], decide)
        write_text(run_dir / L.REPORT, json.dumps(report, indent=1))  # last: finished
        write_manifest(run_dir, "ensemble", finished=True)
    log(format_members_table(report))
    for split in ("validation", "dev"):
        if split in report:
            log("\n" + format_language_table(report[split], split, decides))
    log(f"\nrun directory: {run_dir}")
    return report


def members_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each member and the ensemble side by side: macro-F1 on validation
    (tuned thresholds) and on dev (0.5 and tuned), then dev F1 per label (tuned)."""
    has_dev = "dev" in report
    split = "dev" if has_dev else "validation"
    labels = list(report[split]["tuned_thresholds"]["overall"]["per_label"])

    def f1(rep, split, key, label=None):
        o = rep[split][key]["overall"]
        value = o["macro"]["f1"] if label is None else o["per_label"].get(label, {}).get("f1")
        return "n/a" if value is None else f"{value:.4f}"

    header = ["run", "val tuned"] + (["dev @0.5", "dev tuned"] + labels if has_dev else [])
    rows = []
    for name, rep in [*((Path(n).name, r) for n, r in report["members"].items()),
                      ("ENSEMBLE", report)]:
        row = [name, f1(rep, "validation", "tuned_thresholds")]
        if has_dev:
            row += [f1(rep, "dev", "threshold_0.5"), f1(rep, "dev", "tuned_thresholds")]
            row += [f1(rep, "dev", "tuned_thresholds", n) for n in labels]
        rows.append(row)
    return header, rows


def format_members_table(report: dict) -> str:
    """`members_table` as aligned plain text."""
    header, rows = members_table(report)
    width = max(len(r[0]) for r in rows + [header]) + 2
    return "\n".join(f"{r[0]:<{width}}" + "".join(f"{c[:9]:>10}" for c in r[1:])
                     for r in [header] + rows)
