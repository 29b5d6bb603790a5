"""Starting a classifier from a trained one (`model.init_from`): its backbone, and its
head's rows for the labels both share.

Pure weight moves between built Keras models; which run to read and what to check
about it is `kemo.training`'s business.

Example:
    source = load_run("~/kemo-runs/e5_all_full")
    backbone = find_backbone(source.model)           # weights and all, trained further
    model = build_classifier(backbone, len(labels), "mean", 0.1)
    shared = copy_head(source.model, source.label_names, model, labels)  # shared label names
"""

from __future__ import annotations

import numpy as np

from kemo.errors import InputError


def find_backbone(model):
    """The keras-hub backbone inside a classifier built by `build_classifier`."""
    import keras_hub

    found = [layer for layer in model.layers if isinstance(layer, keras_hub.models.Backbone)]
    if len(found) != 1:
        raise InputError(f"model {model.name!r}: expected one keras-hub backbone inside it, "
                         f"found {len(found)}")
    return found[0]


def copy_head(source, source_labels, target, target_labels) -> list[str]:
    """Copy the output layer's kernel column and bias of every label in both label
    lists from `source` to `target` (by name, in any order); the other labels of
    `target` keep their fresh initialisation. Returns the labels copied.

    Example:
        copy_head(six_label_model, LABELS6, eng_model, LABELS5)  # 5 columns copied
    """
    src, dst = source.get_layer("logits"), target.get_layer("logits")
    (sk, sb), (dk, db) = [np.asarray(v) for v in src.get_weights()], \
        [np.array(v) for v in dst.get_weights()]
    if sk.shape[0] != dk.shape[0]:
        raise InputError(f"init_from: the source head reads {sk.shape[0]} features, this "
                         f"model's {dk.shape[0]} (another backbone width)")
    index = {name: j for j, name in enumerate(source_labels)}
    shared = [name for name in target_labels if name in index]
    for j, name in enumerate(target_labels):
        if name in index:
            dk[:, j], db[j] = sk[:, index[name]], sb[index[name]]
    dst.set_weights([dk, db])
    return shared
