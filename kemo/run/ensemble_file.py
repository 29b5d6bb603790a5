"""`ensemble.json`: an ensemble run directory's list of member runs and weights.

Written by `kemo.ensemble.build_ensemble`; read (and validated, naming the file and
field of any fault) by whatever reads an ensemble's directory, without loading a model.

Example:
    if is_ensemble_dir(run_dir):
        meta = read_ensemble_file(run_dir)   # {"label_names", "paths", "weights", "serve"}
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
    from kemo.run import files as rf

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
    serve = d.get("serve", "average")  # absent: every covering member averaged
    if serve not in ("average", "specialist"):
        raise InputError(f"{rf.where(file, 'serve')}: expected 'average' or 'specialist', "
                         f"got {serve!r}")
    return {"label_names": names, "paths": paths, "weights": [w / sum(weights) for w in weights],
            "serve": serve}
