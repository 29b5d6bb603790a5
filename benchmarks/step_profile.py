"""Where the e5-small train step's time goes: a per-op profile on JAX and TensorFlow.

    python benchmarks/step_profile.py                          # e5-small, 96 rows, both backends
    python benchmarks/step_profile.py --rows 192 --steps 6 --backends jax
    python benchmarks/step_profile.py --tiny --json /tmp/profile.json   # random 2-layer BERT
    python benchmarks/step_profile.py --setting fine_freeze6   # the full-data config's step
    python benchmarks/step_profile.py --throughput       # + rows/s: JAX, TF, torch, each option tried

`--throughput` then runs benchmarks/e5_throughput.py on the same machine, in the same
command: the three backends and every change the profile suggested, each beside JAX's
default (`x base`), `--throughput-rows` rows each (the speed issue's before/after table).

The step is benchmarks/e5_throughput.py's `baseline` (kemo's `model.fit` with the focal
loss, macro-F1 and per-label-loss metrics, AdamW, length-bucketed numpy batches, token
embeddings frozen; `--backends tensorflow` is its `tensorflow` setting). Each backend runs
in its own process: build, one `fit` over a batch of every length bucket (the compiles),
then `--steps` steps of one `fit` under the backend's profiler:

- JAX: `jax.profiler.trace(..., create_perfetto_trace=True)`; the trace's thunk events
  carry `hlo_module` / `hlo_op`, and XLA's optimised HLO (dumped with `--xla_dump_to`)
  says what each HLO op computes (its opcodes, fused computations and the `op_name` of
  the Keras layer it came from).
- TensorFlow: `tf.profiler.experimental`; the `.xplane.pb` it writes is read with the
  `xplane_pb2` that TensorFlow ships; kernel events are named `scope/op:OpType`.

Each op goes into one group: matmul (dot, convolution, TF's MatMul kernels), attention
(everything else under an attention layer: softmax, masking, scaling), embedding (gathers
and scatters, the embedding layers), optimizer (the AdamW update), elementwise (layer
norm, GELU, bias, dropout, loss, metrics, copies). Op times are summed per group and,
where kernels ran at the same time on both cores, scaled down to the time at least one
op was running ("busy"); host = wall time of the steps minus busy time (input batches,
numpy -> device, Python callbacks and metric bookkeeping between the device's ops).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GROUPS = {"matmul": "matmuls (dot/conv)", "attention": "attention (softmax, mask, scale)",
          "elementwise": "layer norm / GELU / elementwise",
          "embedding": "embedding (gather, layers)",
          "dropout": "dropout (random bits, masks)", "optimizer": "optimizer update",
          "host": "host work between ops"}
TF_MATMUL = re.compile(r"MatMul|Conv|Einsum", re.I)
TF_GATHER = re.compile(r"Gather|Scatter|SegmentSum", re.I)
TF_RANDOM = re.compile(r"Random|Philox|ThreeFry", re.I)
EMBEDDING = re.compile(r"(token|position|segment)_embedding|word_embeddings", re.I)
RANDOM = re.compile(r"dropout|_bernoulli|_uniform|threefry|random_bits|rng", re.I)
OPTIMIZER = re.compile(r"adam|optimizer|apply_gradient|ResourceApply", re.I)
# attention, but not the layer norm after it (`self_attention_layer_norm`)
ATTENTION = re.compile(r"attention(?!_layer_norm|_output_layer_norm)", re.I)


def categorise_tf(name: str, op_type: str) -> str:
    """The group of one TensorFlow kernel, from its scope `name` and `op_type`."""
    if TF_MATMUL.search(op_type):
        return "matmul"
    if TF_GATHER.search(op_type) or EMBEDDING.search(name):
        return "embedding"
    if OPTIMIZER.search(name) or OPTIMIZER.search(op_type):
        return "optimizer"
    if TF_RANDOM.search(op_type) or RANDOM.search(name):
        return "dropout"
    if ATTENTION.search(name):
        return "attention"
    return "elementwise"


def name_group(name: str) -> str:
    """The group a Keras / JAX scope name (`op_name`) points to, matmuls aside."""
    if EMBEDDING.search(name):
        return "embedding"
    if OPTIMIZER.search(name):
        return "optimizer"
    if RANDOM.search(name):
        return "dropout"
    if ATTENTION.search(name):
        return "attention"
    return "elementwise"


def categorise_hlo(opcodes: set[str], op_names: list[str]) -> str:
    """The group of one HLO op from the opcodes it runs (its fused computation's too) and
    the `op_name`s (JAX / Keras scopes) of its non-trivial instructions: dots and
    convolutions are matmuls, gathers and scatters embedding, else the scope most of its
    instructions come from (XLA shares constants across scopes: their names mislead)."""
    if opcodes & {"dot", "convolution"} or any("matmul" in c or "gemm" in c for c in opcodes):
        return "matmul"
    if opcodes & {"gather", "scatter"}:
        return "embedding"
    votes = Counter(name_group(n) for n in op_names if n)
    order = list(GROUPS)
    return max(votes, key=lambda g: (votes[g], -order.index(g))) if votes else "elementwise"


TRIVIAL = {"constant", "broadcast", "parameter", "bitcast", "copy", "get-tuple-element",
           "tuple", "reshape", "iota"}
HLO_COMP = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
HLO_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*?\s([a-z][\w\-]*)\(")


def parse_hlo(text: str) -> dict[str, str]:
    """{HLO op name: group} for every instruction of one optimised HLO module's text."""
    comps, current, instrs = {}, None, []
    for line in text.splitlines():
        m = HLO_COMP.match(line)
        if m and "=" not in line.split("{")[0]:
            current = comps.setdefault(m.group(1), [])
            continue
        m = HLO_INSTR.match(line)
        if m and current is not None:
            custom = re.search(r'custom_call_target="([^"]+)"', line)
            opcode = custom.group(1).lower() if custom else m.group(2)
            op_name = re.search(r'op_name="([^"]*)"', line)
            op_name = op_name if opcode not in TRIVIAL else None
            calls = re.findall(r"(?:calls|to_apply|body|condition)=%?([\w.\-]+)", line)
            entry = (m.group(1), opcode, op_name.group(1) if op_name else "", calls)
            current.append(entry)
            instrs.append(entry)

    def contents(comp, seen):  # opcodes and op_names of a computation, recursively
        ops, names = set(), []
        for _, opcode, op_name, calls in comps.get(comp, []):
            ops.add(opcode)
            names.append(op_name)
            for c in calls:
                if c not in seen:
                    seen.add(c)
                    o, n = contents(c, seen)
                    ops |= o
                    names += n
        return ops, names

    groups = {}
    for name, opcode, op_name, calls in instrs:
        ops, names = {opcode}, [op_name]
        for c in calls:
            o, n = contents(c, {c})
            ops |= o
            names += n
        groups[name] = categorise_hlo(ops, names)
    return groups


def hlo_groups(dump_dir: Path) -> dict[str, dict[str, str]]:
    """{module name: {HLO op: group}} from XLA's `*after_optimizations.txt` dumps."""
    out = {}
    for path in sorted(dump_dir.glob("*after_optimizations.txt")):
        text = path.read_text(errors="replace")
        m = re.search(r"^HloModule ([\w.\-]+)", text, re.M)
        if m:
            out.setdefault(m.group(1), {}).update(parse_hlo(text))
    return out


def jax_events(trace_dir: Path, dump_dir: Path) -> list[tuple]:
    """(group, start us, duration us, HLO op) of every XLA op in JAX's perfetto trace."""
    groups = hlo_groups(dump_dir)
    path = next(trace_dir.rglob("perfetto_trace.json.gz"))
    data = json.load(gzip.open(path))
    events = data["traceEvents"] if isinstance(data, dict) else data
    out = []
    for e in events:
        args = e.get("args") or {}
        if e.get("ph") != "X" or "hlo_op" not in args:
            continue
        module = groups.get(args.get("hlo_module"), {})
        group = module.get(args["hlo_op"])
        if group is None:  # a module not dumped: go by the op's name alone
            group = categorise_hlo({args["hlo_op"].split(".")[0]}, [])
        out.append((group, float(e["ts"]), float(e["dur"]), args["hlo_op"]))
    return out


def tf_events(trace_dir: Path) -> list[tuple]:
    """(group, start us, duration us, name) of every kernel of the train function in TF's xplane
    (tf.data's own threads are input work, counted under host)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(next(trace_dir.rglob("*.xplane.pb")).read_bytes())
    out = []
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if line.name.startswith("tf_data") or line.name == "python":
                continue
            for e in line.events:
                name = plane.event_metadata[e.metadata_id].name
                scope, _, op_type = name.rpartition(":")
                if not scope or " " in op_type or "::" in name:
                    continue
                start = (line.timestamp_ns + e.offset_ps / 1000) / 1000
                out.append((categorise_tf(scope, op_type), start, e.duration_ps / 1e6, name))
    return out


def busy_us(events: list[tuple]) -> float:
    """Microseconds during which at least one of `events` ran (the union of intervals)."""
    total, end = 0.0, float("-inf")
    for _, start, dur, *_ in sorted(events, key=lambda e: e[1]):
        stop = start + dur
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def summarise(events: list[tuple], wall_s: float, steps: int) -> dict:
    """Per-group ms per step and share of the wall time (the groups sum to the wall
    time), and each group's three costliest ops (summed op ms per step)."""
    op_sum = {g: 0.0 for g in GROUPS if g != "host"}
    per_op = {}
    for group, _, dur, *name in events:
        op_sum[group] += dur
        key = (group, name[0] if name else "?")
        per_op[key] = per_op.get(key, 0.0) + dur
    top = {g: [[n, round(v / 1000 / steps, 2)] for (gg, n), v in
               sorted(per_op.items(), key=lambda kv: -kv[1]) if gg == g][:3] for g in op_sum}
    total_ops = sum(op_sum.values())
    busy = busy_us(events)
    scale = busy / total_ops if total_ops else 0.0
    wall_us = wall_s * 1e6
    ms = {g: v * scale / 1000 / steps for g, v in op_sum.items()}
    ms["host"] = max(wall_us - busy, 0.0) / 1000 / steps
    total = sum(ms.values())
    return {"wall_ms_per_step": wall_us / 1000 / steps, "ms_per_step": ms,
            "share": {g: v / total if total else 0.0 for g, v in ms.items()},
            "op_events": len(events), "overlap": total_ops / busy if busy else 0.0,
            "top_ops": top}


def tiny_backbone():
    """A random 2-layer BERT (vocabulary 1000): the same step's shape, no download."""
    import keras_hub

    return keras_hub.models.BertBackbone(vocabulary_size=1000, num_layers=2, num_heads=2,
                                         hidden_dim=64, intermediate_dim=128,
                                         max_sequence_length=128)


def tiny_rows(rows: int):
    """Random token rows of 8..32 tokens (one length bucket: one compile) and 28 labels,
    some unknown."""
    import numpy as np

    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 33, rows)
    mask = np.arange(128)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(5, 1000, (rows, 128)), 0).astype("int32")
    y = (rng.random((rows, 28)) < 0.2).astype("float32")
    y[rng.random((rows, 28)) < 0.05] = -1
    return {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}, y


def e5_rows(rows: int, data_dir: str):
    """`rows` training rows of all 28 languages, drawn as e5_throughput draws them; only
    those rows are tokenised unless e5_throughput's cache of all rows exists."""
    import numpy as np

    import e5_throughput as e5

    cached = e5.CACHE / "train_tokens.npz"
    if cached.is_file():
        return e5.sample_rows({"tokens": str(cached), "rows": rows})
    from kemo.config import ModelConfig
    from kemo.data.brighter import LANGUAGES, load_split, resolve_data_dir
    from kemo.data.pipeline import tokenize
    from kemo.models import load_preprocessor

    ex = load_split(resolve_data_dir(data_dir), "train", LANGUAGES)
    pick = np.random.default_rng(0).choice(len(ex.y), rows, replace=False)
    pre = load_preprocessor(ModelConfig(preset="e5-small-multi", sequence_length=128))
    arrays = tokenize([ex.texts[i] for i in pick], pre)
    arrays["segment_ids"] = np.zeros_like(arrays["token_ids"])
    return arrays, ex.y[pick]


class StepWindow:
    """A Keras callback: wall time from the first step's start to the epoch's end."""

    def __new__(cls):
        import keras

        class _Window(keras.callbacks.Callback):
            start = stop = None

            def on_train_batch_begin(self, batch, logs=None):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.stop = time.perf_counter()

        return _Window()


def child(spec: dict) -> dict:
    """Profile `spec["steps"]` train steps on this process's backend."""
    import keras

    import e5_throughput as e5

    backend = keras.backend.backend()
    if spec["tiny"]:
        arrays, y = tiny_rows(spec["rows"])
        backbone = tiny_backbone()
    else:
        arrays, y = e5_rows(spec["rows"], spec["data_dir"])
        backbone = None
    change = {k: v for k, v in e5.VARIANTS[spec.get("setting", "baseline")][1].items()
              if k not in ("backend", "env")}
    step = {**e5.BASE, **change, "backend": backend}
    model, ds, warm = e5.build_step(step, arrays, y, backbone)
    compile_s = e5.warm_up(model, warm)
    steps = min(spec["steps"], len(ds))
    trace = Path(spec["trace_dir"])
    window = StepWindow()
    if backend == "jax":
        import jax

        with jax.profiler.trace(str(trace), create_perfetto_trace=True):
            model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                      callbacks=[window])
        events = jax_events(trace, Path(spec["dump_dir"]))
    else:
        import tensorflow as tf
        from keras.src.trainers.data_adapters import data_adapter_utils

        # Keras infers the input signature from the first 2 batches; when both have the
        # same length it fixes that length and a later bucket fails: look at all of them.
        data_adapter_utils.NUM_BATCHES_FOR_TENSOR_SPEC = len(ds)
        tf.profiler.experimental.start(str(trace))
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                  callbacks=[window])
        tf.profiler.experimental.stop()
        events = tf_events(trace)
    result = summarise(events, window.stop - window.start, steps)
    return {"backend": backend, "steps": steps, "rows": spec["rows"],
            "batch_size": step["batch_size"], "compile_s": compile_s, **result}


def run_backend(backend: str, args, work: Path) -> dict:
    """`child` in a fresh process with `KERAS_BACKEND=backend` (and XLA's HLO dump)."""
    spec = {"tiny": args.tiny, "rows": args.rows, "steps": args.steps, "setting": args.setting,
            "data_dir": args.data_dir, "trace_dir": str(work / f"trace-{backend}"),
            "dump_dir": str(work / f"hlo-{backend}")}
    env = {**os.environ, "KERAS_BACKEND": backend}
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_dump_to={spec['dump_dir']}"
                            " --xla_dump_hlo_as_text"
                            " --xla_dump_hlo_module_re=train_step").strip()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=args.timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"backend": backend, "error": tail}
    return json.loads(lines[-1])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def table(results: list[dict]) -> str:
    """Groups as rows, `ms/step  share` per backend as columns."""
    ok = [r for r in results if "error" not in r]
    head = f"{'group':<34}" + "".join(f"{r['backend'] + ' ms/step':>20}{'share':>8}" for r in ok)
    rows = [head]
    for g, label in GROUPS.items():
        rows.append(f"{label:<34}" + "".join(
            f"{r['ms_per_step'][g]:>20.1f}{r['share'][g]:>8.1%}" for r in ok))
    rows.append(f"{'wall (sum of the above)':<34}" + "".join(
        f"{r['wall_ms_per_step']:>20.1f}{sum(r['share'].values()):>8.1%}" for r in ok))
    rows.append(f"{'op events / overlap factor':<34}" + "".join(
        f"{r['op_events']:>20d}{r['overlap']:>8.2f}" for r in ok))
    for r in ok:
        rows.append(f"{r['backend']}'s costliest ops per group (op ms per step, before "
                    "the overlap scaling):")
        rows += [f"  {g:<12}" + "; ".join(f"{n[-60:]} {v:.1f}" for n, v in top)
                 for g, top in r["top_ops"].items() if top]
    rows += [f"{r['backend']}: error: {r['error']}" for r in results if "error" in r]
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=96, help="training rows drawn (default 96)")
    ap.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    ap.add_argument("--backends", nargs="+", default=["jax", "tensorflow"],
                    choices=["jax", "tensorflow"])
    ap.add_argument("--tiny", action="store_true", help="random 2-layer BERT, random rows")
    ap.add_argument("--setting", default="baseline", help="an e5_throughput setting to "
                    "profile instead of `baseline` (its backend ignored), e.g. fine_freeze6")
    ap.add_argument("--data-dir", default=os.environ.get("KEMO_DATA_DIR") or str(
        ROOT.parent / "shared" / "data" / "brighter" / "track_a"), help="Track A root")
    ap.add_argument("--keep", help="keep the traces and HLO dumps in this folder")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per backend")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--throughput", action="store_true", help="then the rows/s of the three "
                    "backends and of each option tried (benchmarks/e5_throughput.py)")
    ap.add_argument("--throughput-rows", type=int, default=384)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    from kemo.machine import cpu_info, describe_cpu

    cpu = cpu_info()
    print(f"cpu: {describe_cpu(cpu)}", flush=True)
    print(f"step: {'tiny random 2-layer BERT' if args.tiny else 'e5-small-multi'} "
          f"(setting {args.setting}), batch 32, "
          f"{args.rows} rows drawn, {args.steps} profiled steps; load average before: "
          f"{load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="step_profile_") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [run_backend(b, args, work) for b in args.backends]
    print(table(results), flush=True)
    after = load_average()
    print(f"load average after: {after}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpu": cpu, "load_average_after": after,
                                               "results": results}, indent=1))
    if args.throughput:
        import e5_throughput

        print("\nthroughput (benchmarks/e5_throughput.py):", flush=True)
        e5_throughput.main(["--only", *TRIED, "--rows", str(args.throughput_rows),
                            "--data-dir", args.data_dir])
    return 1 if any("error" in r for r in results) else 0


# The backends, then each change the profile pointed to (see README, "Where the time goes").
TRIED = ["baseline", "tensorflow", "torch", "sync_steps", "xla_vec512", "ynn_no_reduce",
         "ynn_dot_only", "concurrency_sched", "sequential_sched", "fast_math", "eigen_1thread",
         "xnn_dot", "onednn_dot"]


if __name__ == "__main__":
    sys.exit(main())
