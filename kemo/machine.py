"""What machine a figure was measured on: CPU model, the ISA flags that matter, cores.

CPU speed figures differ from one CPU model to another (AVX-512, AMX or bf16 support
change which kernels XLA and PyTorch pick), so every benchmark prints this beside its
figures and stores it in its JSON.

Example:
    info = cpu_info()    # {"model": "AMD EPYC ...", "flags": ["avx2", "avx512f"], ...}
    print(describe_cpu(info))
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# ISA extensions that decide the matmul kernels on x86 (and their Arm counterparts).
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16",
         "amx_bf16", "amx_tile", "asimd", "sve", "bf16")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU model, the `FLAGS` it has, logical cores usable by this process."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    model, flags = None, set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model is None:
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model or platform.processor() or platform.machine(),
            "flags": [f for f in FLAGS if f in flags], "cores": cores,
            "machine": platform.machine()}


def describe_cpu(info: dict) -> str:
    """One phrase: `AMD EPYC (x86_64, 2 cores; avx2 fma avx512f ...)` (callers label it
    `cpu: `; the report page's header has its own `cpu:` key)."""
    return (f"{info['model']} ({info['machine']}, {info['cores']} cores; "
            f"{' '.join(info['flags']) or 'none of ' + '/'.join(FLAGS[:3])})")
