"""`ensemble.json`: an ensemble run directory's list of member runs and weights.

Written by `kemo.ensemble.build_ensemble`; read (and validated, naming the file and
field of any fault) by whatever reads an ensemble's directory, without loading a model.

Example:
    if is_ensemble_dir(run_dir):
        meta = read_ensemble_file(run_dir)   # {"label_names", "paths", "weights", "serve", ...}
        check_member(meta, 0, load_run(meta["paths"][0]).path)  # the run it was built from

Each member's identity is recorded when the ensemble is built (`member_identity`: its
model's sha256 and its run.json's start and end times); a member directory replaced
since (another run, even with the same labels) is refused, naming the member.
"""

from __future__ import annotations

from pathlib import Path

from kemo.errors import InputError
from kemo.run import layout as L

ENSEMBLE_FILE = L.ENSEMBLE
FORMAT = "kemo-ensemble"


def is_ensemble_dir(path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_ensemble_file(path) -> dict:
    """`ensemble.json`, validated: the ensemble's label names, member paths (resolved
    against the ensemble directory) and weights; InputError naming the file and field."""
    from kemo.run import json_files as rf

    file = Path(path) / ENSEMBLE_FILE
    d = rf.read_json(file)
    if d.get("format") != FORMAT:
        raise InputError(f"{rf.where(file, 'format')}: expected {FORMAT!r}")
    names = rf.label_names(rf.field(d, "label_names", file, list), file, "label_names")
    members = rf.field(d, "members", file, list)
    if not members:
        raise InputError(f"{rf.where(file, 'members')}: expected at least one member")
    view = {"members": {str(i): m for i, m in enumerate(members)}}  # named members.<i>
    paths, weights, identities = [], [], []
    for i in view["members"]:
        ident = rf.field(view, ("members", i, "identity"), file, dict, optional=True)
        if ident is not None:
            rf.field(view, ("members", i, "identity", "model_sha256"), file, str)
        identities.append(ident)
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
    serve = d.get("serve", "average")  # absent: every covering member averaged
    if serve not in ("average", "specialist"):
        raise InputError(f"{rf.where(file, 'serve')}: expected 'average' or 'specialist', "
                         f"got {serve!r}")
    return {"label_names": names, "paths": paths, "weights": [w / sum(weights) for w in weights],
            "identities": identities, "file": file, "serve": serve}


def member_identity(run_dir) -> dict:
    """What binds an ensemble to a member run: its model.keras sha256 (run.json's, which
    loading the run checks against the file, else the file's) and its run.json's
    `started` and `finished` (None for a run from before run.json)."""
    from kemo.data.fingerprints import file_sha256
    from kemo.run.manifest import read_manifest

    m = read_manifest(run_dir) or {}
    sha = m.get("model_sha256")
    if not isinstance(sha, str):
        sha = file_sha256(Path(run_dir) / L.MODEL)
    return {"model_sha256": sha, "started": m.get("started"), "finished": m.get("finished")}


def check_member(meta: dict, i: int, run_dir) -> None:
    """InputError, naming member `i`, when the run at its path is not the one the
    ensemble was built from (an ensemble from before identities: not checked)."""
    recorded = meta["identities"][i]
    if recorded is None:
        return
    now = member_identity(run_dir)
    what = next((k for k in ("model_sha256", "started", "finished")
                 if recorded.get(k) != now[k]), None)
    if what is not None:
        why = ("its model.keras differs" if what == "model_sha256"
               else f"its run.json's '{what}' time differs")
        raise InputError(f"{meta['file']}, field 'members.{i}': {run_dir} is not the run "
                         f"this ensemble was built from ({why}: the folder was replaced or "
                         "trained again); build the ensemble again (kemo ensemble ... "
                         "--overwrite)")
