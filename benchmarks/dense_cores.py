"""One dense layer's forward + backward on JAX, TensorFlow and torch, pinned to 1 core
and to every core: how fast each backend's matmul kernels run per core, and how far
they scale to the second one (the speed issue's ISA question, smallest form).

    python benchmarks/dense_cores.py                 # ~1 min on 2 cores
    python benchmarks/dense_cores.py --repeats 30 --json /tmp/dense.json

The layer is e5-small's intermediate dense at a length bucket of 64: x [32, 64, 384]
@ W [384, 1536], tanh-GELU, loss sum(y^2), gradient for W (2 x 2.4 GFLOP). Each
(backend, cores) runs in its own process under `os.sched_setaffinity` (taskset), the
median of `--repeats` calls after 3 warm-up calls; JAX and TensorFlow compile the step
once (jit, tf.function), torch runs eager with `torch.set_num_threads(cores)`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from isa_matmul import median_ms  # noqa: E402  (the same timing: 3 warm-up calls, median)
B, L, D, H = 32, 64, 384, 1536
GFLOP = 2 * 2 * B * L * D * H / 1e9  # forward x @ W and the gradient x^T @ g


def child(backend: str, repeats: int) -> dict:
    """Median seconds of one forward + backward in this process (affinity already set)."""
    import numpy as np

    cores = len(os.sched_getaffinity(0))
    x = np.random.default_rng(0).standard_normal((B, L, D)).astype("float32")
    w = (np.random.default_rng(1).standard_normal((D, H)) * 0.05).astype("float32")
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        step = jax.jit(jax.grad(lambda w, x: jnp.sum(jax.nn.gelu(x @ w) ** 2)))
        xj, wj = jnp.asarray(x), jnp.asarray(w)

        def run():
            jax.block_until_ready(step(wj, xj))
        version = jax.__version__
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(cores)
        xt, wt = tf.constant(x), tf.Variable(w)

        @tf.function
        def tf_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.gelu(xt @ wt, approximate=True) ** 2)
            return tape.gradient(loss, wt)

        def run():
            tf_step().numpy()
        version = tf.__version__
    else:
        import torch

        torch.set_num_threads(cores)
        xt = torch.from_numpy(x)
        wt = torch.from_numpy(w).requires_grad_(True)

        def run():
            wt.grad = None
            (torch.nn.functional.gelu(xt @ wt, approximate="tanh") ** 2).sum().backward()
        version = torch.__version__
    ms = median_ms(run, repeats)
    return {"backend": backend, "version": version, "cores": cores, "ms": ms,
            "gflop_per_s": GFLOP / (ms / 1000)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        os.sched_setaffinity(0, set(range(int(args.child[1]))))
        print(json.dumps(child(args.child[0], args.repeats)), flush=True)
        return 0
    from kemo.machine import cpu_info, describe_cpu

    cpu = cpu_info()
    all_cores = len(os.sched_getaffinity(0))
    print(f"cpu: {describe_cpu(cpu)}; dense fwd+bwd x[{B},{L},{D}] @ W[{D},{H}], "
          f"{GFLOP:.1f} GFLOP per call; load average {os.getloadavg()[0]:.2f}", flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = []
    for backend in args.backends:
        for cores in sorted({1, all_cores}):
            proc = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats),
                                   "--child", backend, str(cores)],
                                  env=env, capture_output=True, text=True, timeout=600)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                err = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
                print(f"{backend:<11} {cores} core(s): error: {err}", flush=True)
                continue
            results.append(json.loads(lines[-1]))
    print(f"{'backend':<11}{'version':<14}{'1 core ms':>10}{f'{all_cores} cores ms':>12}"
          f"{'scaling':>9}{'GFLOP/s':>9}", flush=True)
    for backend in args.backends:
        rows = {r["cores"]: r for r in results if r["backend"] == backend}
        if 1 not in rows or all_cores not in rows:
            continue
        one, every = rows[1], rows[all_cores]
        print(f"{backend:<11}{one['version']:<14}{one['ms']:>10.1f}{every['ms']:>12.1f}"
              f"{one['ms'] / every['ms']:>8.2f}x{every['gflop_per_s']:>9.1f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
