"""What e5-small's dropout masks cost in JAX with each random-bit generator XLA offers.

    python benchmarks/dropout_bits.py          # ~30 s

One jitted function draws the masks of one e5-small train step at a length bucket of 64
(12 layers x [two hidden-state masks 32 x 64 x 384 and one attention-probability mask
32 x 12 x 64 x 64], keep probability 0.9) and applies them: with `jax.random.bernoulli`
on a threefry key (what Keras does), and with `lax.rng_bit_generator` (Philox, and XLA's
default algorithm) compared against the keep threshold. Median of 10 calls after one
warm-up, each generator twice in alternating order.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def masks_step(generator: str, batch: int = 32, length: int = 64):
    """The jitted step drawing and applying the masks (`batch` rows of `length` tokens)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    hidden = jnp.ones((batch, length, 384))
    attention = jnp.ones((batch, 12, length, length))
    algorithm = {"philox": lax.RandomAlgorithm.RNG_PHILOX,
                 "xla_default": lax.RandomAlgorithm.RNG_DEFAULT}.get(generator)

    def drop(key, x):
        if generator == "threefry":
            keep = jax.random.bernoulli(key, 0.9, x.shape)
        else:
            _, bits = lax.rng_bit_generator(jnp.concatenate([key, key]), x.shape,
                                            dtype=jnp.uint32, algorithm=algorithm)
            keep = bits < jnp.uint32(int(0.9 * 2**32))
        return jnp.where(keep, x / 0.9, 0.0)

    @jax.jit
    def step(seed):
        total = 0.0
        for layer in range(12):
            key = seed + layer
            total = (total + drop(key, hidden).sum() + drop(key + 100, hidden).sum()
                     + drop(key + 200, attention).sum())
        return total

    return step


def main() -> int:
    import jax
    import jax.numpy as jnp

    from kemo.machine import cpu_info, describe_cpu

    print(f"cpu: {describe_cpu(cpu_info())}; jax {jax.__version__}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    seed = jnp.array([1, 2], dtype=jnp.uint32)
    times: dict[str, list[float]] = {}
    order = ["threefry", "philox", "xla_default"]
    for generator in order + order[::-1]:
        step = masks_step(generator)
        step(seed).block_until_ready()
        for _ in range(10):
            t0 = time.perf_counter()
            step(seed).block_until_ready()
            times.setdefault(generator, []).append(time.perf_counter() - t0)
    base = statistics.median(times["threefry"])
    print(f"{'generator':<14}{'ms per step':>12}{'x threefry':>12}")
    for generator in order:
        ms = statistics.median(times[generator]) * 1000
        print(f"{generator:<14}{ms:>12.1f}{ms / 1000 / base:>12.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
