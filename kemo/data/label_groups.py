"""Grouping a dataset's labels into coarser ones (GoEmotions' 27 emotions into Ekman's six).

A grouping file is a JSON object `{group: [label, ...]}` (GoEmotions'
`ekman_mapping.json`). A row has a group when it has any of the group's labels. A label
that no group names (GoEmotions' `neutral`) is, by `ungrouped`: "keep", a label of its
own after the groups (Ekman's six + neutral, the published Ekman setting); "drop",
dropped (rows that had only it have no label: exactly the groups' names).

Example:
    groups = read_label_groups(Path("ekman_mapping.json"), emotions)
    names = grouped_names(groups, emotions, "keep")   # Ekman's six groups, then neutral
    ekman = group_examples(examples, groups, "keep")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kemo.data.examples import Examples
from kemo.errors import InputError


def read_label_groups(path: Path, label_names) -> dict[str, list[str]]:
    """The groups of `path`, checked: a JSON object of non-empty lists of distinct known
    label names, no label in two groups."""
    if not path.is_file():
        raise InputError(f"{path}: file not found (config key 'data.label_groups_file')")
    try:
        groups = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(groups, dict) or not groups:
        raise InputError(f"{path}: expected a JSON object {{group: [label, ...]}}")
    owner = {}
    for group, members in groups.items():
        if not isinstance(members, list) or not members:
            raise InputError(f"{path}, group {group!r}: expected a non-empty list of labels")
        for label in members:
            if label not in label_names:
                raise InputError(f"{path}, group {group!r}: unknown label {label!r} (the "
                                 f"dataset's labels: {', '.join(label_names)})")
            if label in owner:
                raise InputError(f"{path}, group {group!r}: label {label!r} is already in "
                                 f"group {owner[label]!r}")
            owner[label] = group
    return {g: list(m) for g, m in groups.items()}


def grouped_names(groups: dict, label_names, ungrouped: str) -> tuple[str, ...]:
    """The label names after grouping: the groups in file order, then (ungrouped
    "keep") each label no group names, in its order."""
    named = {n for members in groups.values() for n in members}
    kept = [n for n in label_names if n not in named and n not in groups] \
        if ungrouped == "keep" else []
    return tuple(groups) + tuple(kept)


def group_examples(ex: Examples, groups: dict, ungrouped: str) -> Examples:
    """`ex` with its labels grouped (module docstring); a group is known for a row when
    any of its labels is."""
    names = grouped_names(groups, ex.label_names, ungrouped)
    members = {g: [ex.label_names.index(n) for n in m] for g, m in groups.items()}
    members.update({n: [ex.label_names.index(n)] for n in names if n not in groups})
    labels = np.stack([ex.labels[:, members[n]].max(axis=1) for n in names], 1)
    mask = np.stack([ex.mask[:, members[n]].max(axis=1) for n in names], 1)
    return Examples(ex.ids, ex.texts, ex.langs, labels.astype("float32"),
                    mask.astype("float32"), names, ex.has_labels)
