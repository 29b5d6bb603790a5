"""Which instruction set each backend's matmuls run with: one dense layer and one attention
block, forward and forward+backward, on JAX (with XLA CPU options side by side),
TensorFlow (oneDNN on and off) and torch.

    python benchmarks/isa_matmul.py                      # e5-small shapes, ~5 min on 2 cores
    python benchmarks/isa_matmul.py --repeats 20 --perf  # + the hottest kernels (perf record)
    python benchmarks/isa_matmul.py --tiny --json /tmp/isa.json

Shapes (e5-small's layer): x is batch 32 x 128 tokens x 384; the dense layer is
gelu(x @ W[384, 1536] + b); the attention block projects q, k, v (384 -> 384, 12 heads
of 32), softmax(q k^T / sqrt(32)) v, and projects back. Each (framework, option) runs in
its own process; times are the median of `--repeats` calls after 3 warm-up calls.

What says which ISA ran:
- JAX: XLA's dumps (`--xla_dump_to`): the optimised HLO (which dots became `ynn_fusion`,
  i.e. YNNPACK's runtime kernels, which `custom-call`s to oneDNN, which the JIT emits
  itself), and the LLVM IR of the JIT's own kernels: 512-bit vectors (`<16 x float>`)
  against 256-bit ones (`<8 x float>`), and the target features it compiled for.
- TensorFlow: `ONEDNN_VERBOSE=1`: every oneDNN primitive it ran and its implementation
  (e.g. `brg_matmul:avx512_core_bf16`); `TF_ENABLE_ONEDNN_OPTS=0` is the Eigen path.
- torch: its CPU capability and the oneDNN lines where it calls oneDNN.
- `--perf`: `perf record` of the default run of each framework; the hottest symbols
  (YNNPACK, MKL and OpenBLAS name their kernels by ISA, e.g. `..._x86_avx512f`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FULL = {"batch": 32, "seq": 128, "hidden": 384, "ffn": 1536, "heads": 12}
TINY = {"batch": 4, "seq": 16, "hidden": 64, "ffn": 128, "heads": 2}
# (name, framework, environment): each runs in its own process
XLA_OPTIONS = {
    "jax": "",
    "jax vector512": "--xla_cpu_prefer_vector_width=512",
    "jax fast-math": "--xla_cpu_enable_fast_math=true",
    "jax onednn": "--xla_cpu_use_onednn=true",
    "jax xnnpack": "--xla_cpu_use_xnnpack=true",
    "jax 1-thread-eigen": "--xla_cpu_multi_thread_eigen=false",
}
RUNS = {name: ("jax", {"XLA_FLAGS": flags}) for name, flags in XLA_OPTIONS.items()}
RUNS["tensorflow"] = ("tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "1"})
RUNS["tensorflow eigen"] = ("tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "0"})
RUNS["torch"] = ("torch", {})
CASES = ("dense fwd", "dense fwd+bwd", "attention fwd", "attention fwd+bwd")


def median_ms(fn, repeats: int) -> float:
    """Median wall milliseconds of `fn()` (which must block until done) after 3 calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def inputs(shape: dict):
    """Random float32 arrays (numpy) of the dense layer and the attention block."""
    import numpy as np

    rng = np.random.default_rng(0)
    b, s, h, f = shape["batch"], shape["seq"], shape["hidden"], shape["ffn"]

    def r(*dims):
        return (rng.standard_normal(dims) * 0.05).astype("float32")

    return {"x": r(b, s, h), "w": r(h, f), "bias": r(f), "wq": r(h, h), "wk": r(h, h),
            "wv": r(h, h), "wo": r(h, h)}


def run_jax(shape: dict, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    a = {k: jnp.asarray(v) for k, v in inputs(shape).items()}
    heads = shape["heads"]

    def dense(x, w, bias):
        return jax.nn.gelu(x @ w + bias)

    def attention(x, wq, wk, wv, wo):
        b, s, h = x.shape
        q, k, v = (jnp.reshape(x @ m, (b, s, heads, h // heads)) for m in (wq, wk, wv))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(h // heads)
        out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
        return jnp.reshape(out, (b, s, h)) @ wo

    def loss(f):
        return lambda *args: jnp.sum(f(*args) ** 2)

    d_args = (a["x"], a["w"], a["bias"])
    t_args = (a["x"], a["wq"], a["wk"], a["wv"], a["wo"])
    d_f, t_f = jax.jit(dense), jax.jit(attention)
    d_g = jax.jit(jax.grad(loss(dense), argnums=(0, 1, 2)))
    t_g = jax.jit(jax.grad(loss(attention), argnums=(0, 1, 2, 3, 4)))
    return {"dense fwd": median_ms(lambda: d_f(*d_args).block_until_ready(), repeats),
            "dense fwd+bwd": median_ms(lambda: jax.block_until_ready(d_g(*d_args)), repeats),
            "attention fwd": median_ms(lambda: t_f(*t_args).block_until_ready(), repeats),
            "attention fwd+bwd": median_ms(lambda: jax.block_until_ready(t_g(*t_args)),
                                           repeats),
            "info": f"jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"}


def run_tensorflow(shape: dict, repeats: int) -> dict:
    import tensorflow as tf

    a = {k: tf.constant(v) for k, v in inputs(shape).items()}
    heads = shape["heads"]

    def dense(x, w, bias):
        return tf.nn.gelu(tf.matmul(tf.reshape(x, (-1, x.shape[-1])), w) + bias)

    def attention(x, wq, wk, wv, wo):
        b, s, h = x.shape
        flat = tf.reshape(x, (-1, h))
        q, k, v = (tf.transpose(tf.reshape(flat @ m, (b, s, heads, h // heads)), (0, 2, 1, 3))
                   for m in (wq, wk, wv))
        scores = tf.matmul(q, k, transpose_b=True) / (h // heads) ** 0.5
        out = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        return tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (-1, h)) @ wo

    def grad(f):  # like Keras' TF train step on CPU: tf.function, no XLA (jit_compile off)
        @tf.function
        def g(*args):
            with tf.GradientTape() as tape:
                tape.watch(args)
                y = tf.reduce_sum(f(*args) ** 2)
            return tape.gradient(y, args)
        return g

    d_args = (a["x"], a["w"], a["bias"])
    t_args = (a["x"], a["wq"], a["wk"], a["wv"], a["wo"])
    d_f, t_f = tf.function(dense), tf.function(attention)
    d_g, t_g = grad(dense), grad(attention)
    return {"dense fwd": median_ms(lambda: d_f(*d_args).numpy(), repeats),
            "dense fwd+bwd": median_ms(lambda: [t.numpy() for t in d_g(*d_args)], repeats),
            "attention fwd": median_ms(lambda: t_f(*t_args).numpy(), repeats),
            "attention fwd+bwd": median_ms(lambda: [t.numpy() for t in t_g(*t_args)], repeats),
            "info": f"tensorflow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS="
                    f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}"}


def run_torch(shape: dict, repeats: int) -> dict:
    import torch

    a = {k: torch.from_numpy(v) for k, v in inputs(shape).items()}
    heads = shape["heads"]

    def dense(x, w, bias):
        return torch.nn.functional.gelu(x @ w + bias)

    def attention(x, wq, wk, wv, wo):
        b, s, h = x.shape
        q, k, v = ((x @ m).reshape(b, s, heads, h // heads).transpose(1, 2)
                   for m in (wq, wk, wv))
        scores = q @ k.transpose(-1, -2) / (h // heads) ** 0.5
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, s, h)
        return out @ wo

    def grad(f, args):
        args = [t.clone().requires_grad_(True) for t in args]

        def g():
            for t in args:
                t.grad = None
            (f(*args) ** 2).sum().backward()
        return g

    d_args = (a["x"], a["w"], a["bias"])
    t_args = (a["x"], a["wq"], a["wk"], a["wv"], a["wo"])
    with torch.no_grad():
        d_fwd = median_ms(lambda: dense(*d_args), repeats)
        t_fwd = median_ms(lambda: attention(*t_args), repeats)
    return {"dense fwd": d_fwd, "dense fwd+bwd": median_ms(grad(dense, d_args), repeats),
            "attention fwd": t_fwd,
            "attention fwd+bwd": median_ms(grad(attention, t_args), repeats),
            "info": f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu "
                    f"capability {torch.backends.cpu.get_cpu_capability()}"}


def child(spec: dict) -> dict:
    runner = {"jax": run_jax, "tensorflow": run_tensorflow, "torch": run_torch}
    return runner[spec["framework"]](spec["shape"], spec["repeats"])


def xla_dump_findings(dump: Path) -> dict:
    """What XLA's dumps say about the dots and the JIT's vector width."""
    hlo = "\n".join(p.read_text(errors="replace")
                    for p in dump.glob("*after_optimizations.txt"))
    ir = "\n".join(p.read_text(errors="replace") for p in dump.glob("*ir-with-opt.ll"))
    asm = "\n".join(p.read_text(errors="replace") for p in dump.glob("*.s"))
    features = sorted(set(re.findall(r"\+(avx512[a-z0-9_]*|avx2|amx[a-z0-9_]*|fma)\b", ir)))
    width = re.findall(r'"prefer-vector-width"="(\d+)"', ir)
    targets = Counter(re.findall(r'custom_call_target="([^"]+)"', hlo))
    return {
        "hlo_dots": len(re.findall(r"\sdot\(", hlo)),
        "ynn_fusions": len(re.findall(r"^\s*(?:ROOT )?%?ynn_fusion[\w.]* = ", hlo, re.M)),
        "xnn_fusions": len(re.findall(r"^\s*(?:ROOT )?%?xnn_fusion[\w.]* = ", hlo, re.M)),
        "onednn_calls": sum(n for t, n in targets.items() if "onednn" in t.lower()),
        "custom_calls": dict(targets),
        "ir_files": len(list(dump.glob("*ir-with-opt.ll"))),
        "ir_512bit_float_vectors": len(re.findall(r"<16 x float>", ir)),
        "ir_256bit_float_vectors": len(re.findall(r"<8 x float>", ir)),
        "ir_prefer_vector_width": sorted(set(width)),
        "ir_target_features": features,
        "asm_zmm": len(re.findall(r"%zmm", asm)), "asm_ymm": len(re.findall(r"%ymm", asm)),
        "asm_vdpbf16ps": asm.count("vdpbf16ps"),
    }


def onednn_findings(output: str) -> dict:
    """{primitive kind, implementation: calls} from ONEDNN_VERBOSE's `exec` lines, and the
    ISA oneDNN reports it dispatches to."""
    impls, isa = Counter(), None
    for line in output.splitlines():
        if not line.startswith("onednn_verbose"):
            continue
        fields = line.split(",")
        if "exec" in fields and len(fields) > 6:
            i = fields.index("exec")
            impls[f"{fields[i + 2]} {fields[i + 3]}"] += 1  # kind, implementation
        m = re.search(r",isa:(.*)$", line)
        if m:
            isa = m.group(1).strip()
    return {"onednn_isa": isa, "onednn_primitives": dict(impls.most_common(8))}


def perf_top(data: Path, limit: int = 8) -> list[str]:
    """The hottest symbols of a `perf record` file (percent, shared object, symbol)."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort",
                          "dso,symbol", "--percent-limit", "1.5"], capture_output=True,
                         text=True).stdout
    rows = [ln.strip() for ln in out.splitlines() if re.match(r"\s+\d+\.\d+%", ln)]
    return [re.sub(r"\s+", " ", r)[:150] for r in rows[:limit]]


def run_one(name: str, shape: dict, repeats: int, work: Path, perf: bool,
            timeout: int) -> dict:
    framework, env_extra = RUNS[name]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", **env_extra}
    dump = work / re.sub(r"\W+", "-", name)
    if framework == "jax":
        env["XLA_FLAGS"] = (env_extra["XLA_FLAGS"] + f" --xla_dump_to={dump}"
                            " --xla_dump_hlo_as_text --xla_dump_hlo_module_re=^jit_"
                            "(dense|attention)").strip()
    else:
        env["ONEDNN_VERBOSE"] = "1"
    spec = {"framework": framework, "shape": shape, "repeats": repeats}
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    perf_data = work / f"{dump.name}.perf"
    if perf:
        cmd = ["perf", "record", "-q", "-F", "499", "-o", str(perf_data), "--"] + cmd
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {timeout}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"name": name, "error": tail}
    result = {"name": name, **json.loads(lines[-1])}
    if framework == "jax":
        result["xla"] = xla_dump_findings(dump)
    else:
        result.update(onednn_findings(proc.stdout + proc.stderr))
        if framework == "tensorflow":
            result["onednn_log"] = bool(re.search(r"oneDNN custom operations are on",
                                                  proc.stderr))
    if perf and perf_data.exists():
        result["perf_top"] = perf_top(perf_data)
    return result


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(results: list[dict]) -> str:
    rows = [f"{'run':<22}" + "".join(f"{c + ' ms':>22}" for c in CASES)]
    for r in results:
        if "error" in r:
            rows.append(f"{r['name']:<22}error: {r['error']}")
            continue
        rows.append(f"{r['name']:<22}" + "".join(f"{r[c]:>22.2f}" for c in CASES))
    rows.append("")
    for r in results:
        if "error" in r:
            continue
        rows.append(f"{r['name']}: {r['info']}")
        if "xla" in r:
            x = r["xla"]
            rows.append(f"  HLO: {x['hlo_dots']} dots left to the JIT, {x['ynn_fusions']} "
                        f"ynn_fusion (YNNPACK), {x['xnn_fusions']} xnn_fusion, "
                        f"{x['onednn_calls']} oneDNN custom-calls; custom-calls "
                        f"{x['custom_calls'] or 'none'}")
            rows.append(f"  JIT LLVM IR ({x['ir_files']} files): {x['ir_512bit_float_vectors']}"
                        f" x <16 x float> (512-bit), {x['ir_256bit_float_vectors']} x "
                        f"<8 x float> (256-bit); prefer-vector-width "
                        f"{x['ir_prefer_vector_width'] or '?'}; target features "
                        f"{' '.join(x['ir_target_features']) or '?'}")
            if x["asm_zmm"] or x["asm_ymm"]:
                rows.append(f"  asm: {x['asm_zmm']} zmm, {x['asm_ymm']} ymm, "
                            f"{x['asm_vdpbf16ps']} vdpbf16ps")
        if "onednn_primitives" in r:
            rows.append(f"  oneDNN: isa {r['onednn_isa'] or '-'}; primitives "
                        f"{r['onednn_primitives'] or 'none'}"
                        + (f"; 'oneDNN custom operations are on' logged: {r['onednn_log']}"
                           if "onednn_log" in r else ""))
        for line in r.get("perf_top", []):
            rows.append(f"  perf: {line}")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", choices=list(RUNS), help="default: all (torch if "
                    "installed)")
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per case")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (smoke test)")
    ap.add_argument("--perf", action="store_true", help="perf record the default run of "
                    "each framework and list its hottest symbols")
    ap.add_argument("--keep", help="keep the XLA dumps and perf files in this folder")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per run")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    import importlib.util

    from kemo.machine import cpu_info, describe_cpu

    cpu = cpu_info()
    shape = TINY if args.tiny else FULL
    names = args.runs or [n for n, (fw, _) in RUNS.items()
                          if fw != "torch" or importlib.util.find_spec("torch")]
    print(f"cpu: {describe_cpu(cpu)}", flush=True)
    print(f"shapes: {shape}; median of {args.repeats}; load average before: "
          f"{load_average()}", flush=True)
    defaults = {"jax", "tensorflow", "torch"}
    with tempfile.TemporaryDirectory(prefix="isa_matmul_") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [run_one(n, shape, args.repeats, work, args.perf and n in defaults,
                           args.timeout) for n in names]
    print(report(results), flush=True)
    after = load_average()
    print(f"load average after: {after}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpu": cpu, "shape": shape,
                                               "load_average_after": after,
                                               "results": results}, indent=1))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
