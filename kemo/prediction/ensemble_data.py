"""The rows an ensemble is tuned and reported on, re-created from its members' configs.

Members trained on the same languages must validate on the same rows (else one
`InputError` naming the config keys that differ); members trained on different
languages share, per language, the rows in every covering member's validation split.

Example:
    data = ensemble_data(members, paths)      # members: loaded runs (`load_run`)
    data.val, data.dev, data.served_by        # Examples, Examples | None, lang -> members
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kemo.errors import InputError
from kemo.prediction.ensemble_run import covering_members, member_languages, union_labels
from kemo.run.manifest import recorded_data_dir


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
        fix = (f"set {', '.join(keys)} alike" if keys else "train them on the same files")
        raise InputError(
            f"member {p}: validated on other rows than {paths[0]} ({len(v)} vs {len(first)} "
            f"rows, {only} ids in only one of them; {differs}): an ensemble's thresholds are "
            f"tuned on the validation split its members share ({fix})")


@dataclass
class EnsembleData:
    """The rows an ensemble is tuned and reported on, and who serves which language.

    `val`: per language, the validation rows every member trained on that language
    validated on (no member saw them in training); `dev`: every dev row of the members'
    languages; both with the union of the members' labels. `served_by`: language ->
    indices of the members trained on it.
    """

    val: object
    dev: object
    served_by: dict
    notes: list
    dataset: object = None  # a table dataset the members share (its dev files' shape)


def ensemble_data(members, paths, data_dir=None, serve: str = "average") -> EnsembleData:
    """Re-create each member's splits (`kemo.data.splits.load_data`) and combine them.

    Members trained on the same languages must validate on the same rows (else
    InputError naming the config keys that differ). Members trained on different
    languages share, per language, the rows in every covering member's validation
    split; a language they share none of is refused.
    """
    from kemo.data.examples import align_labels, concat_examples
    from kemo.data.splits import load_data

    names = union_labels(members)
    splits = [load_data(m.config, data_dir, recorded_data_dir(p)) for m, p in zip(members, paths)]
    langs_of = [member_languages(m) for m in members]
    languages = list(dict.fromkeys(lang for ls in langs_of for lang in ls))
    served_by = {lang: covering_members(langs_of, lang, serve) for lang in languages}
    notes = []
    if all(set(ls) == set(langs_of[0]) for ls in langs_of):
        check_same_validation(members, paths, [s.val for s in splits])
        val_parts = [splits[0].val]
    else:
        val_parts = []
        for lang, covering in served_by.items():
            vals = [splits[k].val for k in covering]
            ids = [set(v.ids[v.langs == lang]) for v in vals]
            shared = set.intersection(*ids)
            if not shared:
                raise InputError(
                    f"language {lang}: members {', '.join(str(paths[k]) for k in covering)} "
                    "share no validation row of it (their data settings split it "
                    "differently): its thresholds would be tuned on nothing")
            if any(len(i) != len(shared) for i in ids):
                notes.append(f"{lang}: {len(shared)} validation rows shared by "
                             + ", ".join(f"{paths[k].name} ({len(i)})"
                                         for k, i in zip(covering, ids)))
            first = vals[0]
            val_parts.append(first.subset(np.flatnonzero(
                (first.langs == lang) & np.isin(first.ids, list(shared)))))
    val = concat_examples([align_labels(v, names) for v in val_parts])
    devs = []
    for lang, covering in served_by.items():
        dev = splits[covering[0]].dev
        if dev is not None and (dev.langs == lang).any():
            devs.append(align_labels(dev.subset(np.flatnonzero(dev.langs == lang)), names))
    dataset = splits[0].dataset if splits[0].dataset.layout != "track_a" else None
    return EnsembleData(val, concat_examples(devs) if devs else None, served_by, notes, dataset)
