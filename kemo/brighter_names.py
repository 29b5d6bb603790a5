"""BRIGHTER's names: its 28 language codes and Track A's six emotion labels, in order.

The few facts of the dataset that the ground floor needs: a config's
`data.languages = "all"` (`kemo.config`) and the label order a run's JSON files are
checked against (`kemo.run.json_files`). Reading BRIGHTER's files: `kemo.data.brighter`.

Example:
    label_order(["joy", "anger"])        # ['anger', 'joy']
    "eng" in LANGUAGES                   # True
"""

from __future__ import annotations

LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
LANGUAGES = (
    "afr", "amh", "arq", "ary", "chn", "deu", "eng", "esp", "hau", "hin", "ibo", "kin",
    "mar", "orm", "pcm", "ptbr", "ptmz", "ron", "rus", "som", "sun", "swa", "swe", "tat",
    "tir", "ukr", "vmw", "yor",
)


def label_order(names) -> list[str]:
    """`names` as kemo writes them: Track A's names (all of them among `LABELS`) in
    `LABELS` order, any other label set in its dataset's own order.

    Example:
        label_order(["joy", "anger"])        # ['anger', 'joy']
        label_order(["joy", "neutral"])      # ['joy', 'neutral']
    """
    names = list(names)
    if set(names) <= set(LABELS):
        return [n for n in LABELS if n in names]
    return names
