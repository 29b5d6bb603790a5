"""The run directory: what `kemo train` and `kemo ensemble` write, and what reads it back.

- `kemo.run.layout`: every file name of a run directory, once (no other module spells them).
- `kemo.run.lock`: one writer per run directory (`RunLock`).
- `kemo.run.verdict`: what a folder is before a run is written into it (new, a run kemo
  wrote: finished or not, or not kemo's): `--run-dir`, `--overwrite` and `--resume`.
- `kemo.run.manifest`: `run.json`, the run's manifest (command, times, versions, machine,
  files); optional, runs from before it have none.
- `kemo.run.finish`: how a run ends (thresholds, report, predictions, `report.json` last),
  shared by training and ensembles.
- `kemo.run.intensity_finish`: how an intensity (Track B) run ends: cut points, report,
  prediction files.
- `kemo.run.files`: reading a run's JSON files, each value checked, faults named by field.
- `kemo.run.read`: a trained run read back (`load_run`, `read_run_state`, `Run`).
- `kemo.run.ensemble_file`: an ensemble's `ensemble.json`.
- `kemo.run.migrate`: older runs' `report.json` completed to today's format (backfill).
- `kemo.run.listing`: a summary of each run under a folder, for `kemo runs`.
Light to import: `kemo.run.read` loads Keras when it is imported; the others do not.
"""
