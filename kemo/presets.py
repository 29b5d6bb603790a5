"""Where a preset's files are: an offline model name, a local directory, or a hub handle.

`resolve_preset` maps kemo's offline model names (`kemo.weights.OFFLINE_MODELS`) to the
directory they are materialised in (on first use), checks a local directory holds a
keras-hub or Hugging Face model, and passes hub handles (`hf://`, `kaggle://`) through.
Light: no keras-hub, keras or TensorFlow import (the data layer reads it).

Example:
    resolve_preset("e5-small-multi")   # ~/.cache/kemo/weights/e5-small-multi/...
"""

from __future__ import annotations

import os
from pathlib import Path

from kemo.errors import InputError


HUB_HOSTS = {"hf://": "huggingface.co", "kaggle://": "www.kaggle.com",
             "gs://": "storage.googleapis.com", "modelscope://": "www.modelscope.cn"}
PROBE_SECONDS = 3.0


def _cached(preset: str) -> bool:
    """Whether a hub handle is in the local download cache already (Hugging Face's or
    kagglehub's), so loading it needs no network."""
    home = Path.home() / ".cache"
    if preset.startswith("hf://"):
        hub = Path(os.environ.get("HF_HUB_CACHE") or Path(
            os.environ.get("HF_HOME") or home / "huggingface") / "hub")
        return (hub / ("models--" + preset[5:].strip("/").replace("/", "--"))).is_dir()
    if preset.startswith("kaggle://"):
        cache = Path(os.environ.get("KAGGLEHUB_CACHE") or home / "kagglehub")
        return (cache / "models" / preset[9:].strip("/")).is_dir()
    return False


def _reachable(host: str, seconds: float) -> bool:
    """Whether `host:443` accepts a connection within `seconds` (name lookup included)."""
    import socket
    import threading

    ok = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=seconds).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(seconds)
    return bool(ok)


def check_hub(preset: str) -> None:
    """A hub handle that is not cached must be downloadable: refused in seconds when
    its host does not answer (instead of a minute of retries, then a traceback)."""
    host = next((h for p, h in HUB_HOSTS.items() if preset.startswith(p)), None)
    if host is None or _cached(preset):
        return
    offline = preset.startswith("hf://") and os.environ.get("HF_HUB_OFFLINE") == "1"
    if offline or not _reachable(host, PROBE_SECONDS):
        why = "HF_HUB_OFFLINE=1" if offline else \
            f"{host} does not answer within {PROBE_SECONDS:.0f}s"
        raise InputError(f"config key 'model.preset': {preset!r} must be downloaded and "
                         f"is not in the local cache ({why}); use an offline model "
                         "(kemo weights list), a local preset directory, or a machine "
                         "with network access")


def resolve_preset(preset: str) -> str:
    """Map an offline model name to its directory (materialising it on first use)
    and check local paths exist; a hub handle must be cached or reachable."""
    if preset.startswith(tuple(HUB_HOSTS)):
        check_hub(preset)
        return preset
    from kemo import weights

    if preset in weights.OFFLINE_MODELS:
        return str(weights.ensure(preset))  # materialised on first use
    looks_like_path = os.sep in preset or preset.startswith((".", "~"))
    if looks_like_path:
        path = Path(preset).expanduser()
        if not path.is_dir():
            raise InputError(f"config key 'model.preset': preset directory {preset!r} does not exist")
        if not ((path / "config.json").is_file() or (path / "metadata.json").is_file()):
            raise InputError(
                f"config key 'model.preset': {preset!r} holds no config.json "
                "(expected a keras-hub preset or a Hugging Face model directory)"
            )
        return str(path)
    return preset
