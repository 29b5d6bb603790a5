"""Data parallelism (`train.distribution`, and the processes of `kemo.multiprocess`).

Example:
    set_distribution(cfg)   # before the model is built
"""

from __future__ import annotations

import logging

import keras

from kemo import multiprocess
from kemo.config import Config
from kemo.errors import InputError

log = logging.getLogger(__name__)


def set_distribution(cfg: Config) -> None:
    """Data parallelism over all local devices (and the devices of every process, when
    this is one of several: `kemo.multiprocess`) with `train.distribution =
    "data_parallel"`: weights replicated, each batch sharded over a one-axis device mesh."""
    several = multiprocess.requested()
    if cfg.train.distribution == "none" and not several:
        keras.distribution.set_distribution(None)
        return
    if keras.backend.backend() != "jax":
        raise InputError(f"config key 'train.distribution': {cfg.train.distribution} needs the "
                         f"JAX backend (got {keras.backend.backend()})")
    if several:
        if cfg.train.distribution == "none":
            raise InputError("config key 'train.distribution': a run of several processes needs "
                             '"data_parallel" (--set train.distribution=\'"data_parallel"\')')
        multiprocess.initialize()  # one line: which process, how many, how many devices
    devices = keras.distribution.list_devices()
    if cfg.train.batch_size % len(devices):
        raise InputError(f"config key 'train.batch_size': {cfg.train.batch_size} does not split "
                         f"evenly over {len(devices)} devices")
    # Several processes: each feeds its own rows of every global batch (`batch_arrays`).
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=not multiprocess.active()))
    if multiprocess.is_writer():
        log.info(f"data parallel over {len(devices)} devices: {devices[0]} ...")
