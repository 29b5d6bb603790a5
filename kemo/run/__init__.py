"""The run directory, the ground floor: what a run folder holds, read and written as files.

Imports nothing above the foundation (no model, no prediction, no evaluation): loading a
run is `kemo.prediction.trained_run`, finishing one `kemo.evaluation.finish`.

- `kemo.run.layout`: every file name of a run directory, once (no other module spells them).
- `kemo.run.lock`: one writer per run directory (`RunLock`).
- `kemo.run.verdict`: what a folder is before a run is written into it (new, a run kemo
  wrote: finished or not, or not kemo's): `--run-dir`, `--overwrite` and `--resume`.
- `kemo.run.manifest`: `run.json`, the run's manifest (command, times, versions, machine,
  files); optional, runs from before it have none.
- `kemo.run.json_files`: reading a run's JSON files, each value checked, faults named by field.
- `kemo.run.report_file`: `report.json`, typed (`Report`, `Meta`, the `Setting` enum):
  its keys, once (no other module spells them), read with checks (formats 1 and 2),
  written once.
- `kemo.run.ensemble_file`: an ensemble's `ensemble.json`.
- `kemo.run.listing`: a summary of each run under a folder, for `kemo runs`.
Light to import: none of them loads Keras.
"""
