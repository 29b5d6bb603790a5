"""The run directory: what `kemo train` and `kemo ensemble` write, and what reads it back.

`kemo.run.layout` names every file of a run directory once (no other module spells
them); `kemo.run.manifest` writes and reads `run.json`, the run's manifest; `kemo.run.listing`
summarises the runs under a folder for `kemo runs`. Everything here is light: no keras,
jax or TensorFlow import.
"""
