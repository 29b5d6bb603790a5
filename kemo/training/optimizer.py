"""The optimizer and its learning-rate schedule (`train.schedule`, `train.learning_rate`,
`train.warmup_fraction`, `train.weight_decay`).

Example:
    model.compile(optimizer=make_optimizer(cfg, total_steps=steps * cfg.train.epochs), ...)
"""

from __future__ import annotations

import keras

from kemo.config import Config


def make_optimizer(cfg: Config, total_steps: int):
    """AdamW with linear warmup + cosine decay; no weight decay on biases/LayerNorm."""
    t = cfg.train
    if t.schedule == "cosine":
        warmup = int(round(t.warmup_fraction * total_steps))
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else t.learning_rate,
            decay_steps=max(total_steps - warmup, 1),
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    else:
        lr = t.learning_rate
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=t.weight_decay)
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt
