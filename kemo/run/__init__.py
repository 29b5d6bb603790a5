"""The run directory: what `kemo train` and `kemo ensemble` write, and what reads it back.

- `kemo.run.layout`: every file name of a run directory, once (no other module spells them).
- `kemo.run.manifest`: `run.json`, the run's manifest (command, times, versions, machine,
  files); optional, runs from before it have none.
- `kemo.run.listing`: a summary of each run under a folder, for `kemo runs`.
Everything here is light: no keras, jax or TensorFlow import.
"""
