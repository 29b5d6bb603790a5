"""Training: one package for everything `kemo train` runs and nothing else does.

- `trainer`: `train(cfg, data_dir, run_dir)`, the named steps config -> data -> model ->
  fit -> thresholds -> report.
- `losses`, `intensity_losses`, `metrics`: what the model is compiled with (Keras
  serialisable as `kemo>ClassName`).
- callbacks: `checkpoint` (resumable checkpoints, early stopping), `nan_guard`,
  `validation_callback` (validation scored per language), `monitor` (progress, TensorBoard).

Importing the package loads nothing heavy; `kemo.training.train` is `trainer.train`.

Example:
    from kemo.config import load_config
    from kemo.training import train
    train(load_config("configs/tiny.toml"), run_dir="runs/tiny")
"""


def __getattr__(name):
    if name == "train":  # on first use: Keras loads with the trainer, not with the package
        from kemo.training.trainer import train

        return train
    raise AttributeError(f"module 'kemo.training' has no attribute {name!r}")
