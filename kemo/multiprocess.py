"""One training run over several processes, on JAX's own distributed runtime.

A run joins several processes when the settings JAX and Keras read are present:
`KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator's `host:port`, or every process's,
comma-separated, the first being the coordinator; `JAX_COORDINATOR_ADDRESS` also
works), `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`; or
`KEMO_MULTI_HOST=1`, where JAX finds them itself (TPU pod slices, SLURM).
`initialize` then starts `jax.distributed` (CPU collectives through gloo) with a
heartbeat timeout of `HEARTBEAT_SECONDS` (`KEMO_HEARTBEAT_TIMEOUT` overrides it).

The contract (kemo/training.py keeps it):
- every process builds the same global batch order from the seed and feeds its own
  rows of each global batch (`part`): process `i` of `n` rows `i*b/n .. (i+1)*b/n`;
- weights, metrics, thresholds and report are the same on every process (weights
  and metrics are replicated; `predict_global` gathers predictions on all of them);
- only process 0 (`is_writer`) writes the run directory and holds its lock; the
  others read it (config, token cache, checkpoint) after a `barrier`, so the run
  directory must be one folder all processes see (one machine, NFS);
- a process that fails stops at once with one `error:` line and a non-zero exit
  (`leave`), which makes the others' next collective fail, and they stop too.

`launch` is `kemo train --local-processes N`: N processes on this machine.

Example:
    KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:7777 KERAS_DISTRIBUTION_NUM_PROCESSES=2 \\
    KERAS_DISTRIBUTION_PROCESS_ID=0 kemo train --config tiny \\
        --set train.distribution='"data_parallel"' --run-dir /shared/runs/tiny
    kemo train --local-processes 2 --config tiny --set train.distribution='"data_parallel"'
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

from kemo.errors import InputError

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30  # a process silent this long is dead: the others stop
ADDRESS, NUM, ID = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                    "KERAS_DISTRIBUTION_PROCESS_ID")
LAUNCHED = "KEMO_LOCAL_LAUNCH"  # set by `launch` for the processes it starts
_started = False


def requested() -> bool:
    """Whether this process is one of several (the settings are present; JAX not imported)."""
    env = os.environ
    return env.get("KEMO_MULTI_HOST") == "1" or any(
        env.get(k) for k in (ADDRESS, NUM, "JAX_COORDINATOR_ADDRESS"))


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}: expected a whole number, got "
                         f"{value!r}") from None


def coordinator_address() -> tuple[str, int] | None:
    """The coordinator's (host, port) from the settings, each address checked: one
    `host:port` per process, a port in 1..65535, a host that resolves. None when JAX
    finds it itself (`KEMO_MULTI_HOST`). InputError at once for a malformed one."""
    name = ADDRESS if os.environ.get(ADDRESS) else "JAX_COORDINATOR_ADDRESS"
    text = os.environ.get(name)
    if not text:
        return None
    parsed = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InputError(f"environment variable {name}: {item.strip()!r} is not host:port "
                             "(e.g. 10.0.0.1:7777; several comma-separated, the "
                             "coordinator first)")
        try:
            socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise InputError(f"environment variable {name}: host {host!r} does not resolve "
                             f"({e.strerror if hasattr(e, 'strerror') else e})") from None
        parsed.append((host, int(port)))
    return parsed[0]


def check_settings() -> None:
    """Every setting of a run of several processes, checked before anything heavy
    loads: the addresses (`coordinator_address`), the process count (>= 1), this
    process's id (0 .. count-1) and `KEMO_HEARTBEAT_TIMEOUT` (>= 1 second)."""
    coordinator_address()
    num, pid, beat = _int_env(NUM), _int_env(ID), _int_env("KEMO_HEARTBEAT_TIMEOUT")
    if num is not None and num < 1:
        raise InputError(f"environment variable {NUM}: {num}, expected a count >= 1")
    if pid is not None and (pid < 0 or (num is not None and pid >= num)):
        raise InputError(f"environment variable {ID}: {pid}, expected 0 .. "
                         f"{'count-1' if num is None else num - 1} ({NUM}={num})")
    if beat is not None and beat < 1:
        raise InputError(f"environment variable KEMO_HEARTBEAT_TIMEOUT: {beat}, expected "
                         "whole seconds >= 1")


def check_reachable(timeout: float) -> None:
    """Before joining: process 0 must be able to serve the coordinator's address (an
    address of this machine, port free); another process must reach it within
    `timeout` seconds. Else one InputError line, instead of JAX waiting minutes."""
    address = coordinator_address()
    if address is None:
        return
    host, port = address
    if (_int_env(ID) or 0) == 0:
        try:
            with socket.create_server((host, port)):
                return
        except OSError as e:
            raise InputError(f"coordinator address {host}:{port}: process 0 cannot serve it "
                             f"on this machine ({e.strerror or e}): give an address of this "
                             "machine with a free port") from None
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout)):
                return
        except OSError as e:
            if time.time() >= deadline:
                raise InputError(f"coordinator address {host}:{port}: not reachable within "
                                 f"{timeout:.0f}s ({e.strerror or e}; the heartbeat timeout, "
                                 "KEMO_HEARTBEAT_TIMEOUT): is process 0 running there?"
                                 ) from None
            time.sleep(0.5)


def initialize() -> None:
    """Join the run's processes (once; before any JAX computation) and say so in one line."""
    global _started
    if _started:
        return
    import jax

    if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU all-reduce
    addresses = os.environ.get(ADDRESS) or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    coordinator = addresses.split(",")[0] if addresses else None
    num, pid = _int_env(NUM), _int_env(ID)
    if addresses and "," in addresses and num is not None and num != len(addresses.split(",")):
        raise InputError(f"environment variable {ADDRESS}: {len(addresses.split(','))} "
                         f"addresses, but {NUM} is {num}")
    heartbeat = _int_env("KEMO_HEARTBEAT_TIMEOUT") or HEARTBEAT_SECONDS
    # Started by `launch` on this machine: process 0 is starting beside it (a loaded
    # machine may take a minute to import JAX); an address given by hand: the heartbeat.
    check_reachable(300 if os.environ.get(LAUNCHED) == "1" else heartbeat)
    try:
        jax.distributed.initialize(coordinator, num, pid, initialization_timeout=300,
                                   heartbeat_timeout_seconds=heartbeat,
                                   shutdown_timeout_seconds=60)
    except (ValueError, TypeError, RuntimeError) as e:
        found = "" if addresses else " (JAX found no TPU or SLURM setting: set them)"
        raise InputError(f"cannot join the run's processes ({ADDRESS}={addresses}, "
                         f"{NUM}={num}, {ID}={pid}): {str(e).splitlines()[0]}{found}") from None
    _started = True
    log.info(f"process {jax.process_index()} of {jax.process_count()}: "
             f"{jax.local_device_count()} of {jax.device_count()} devices "
             f"({jax.devices()[0].platform}), coordinator {coordinator or 'found by JAX'}")


def active() -> bool:
    """Whether this process joined a run of several (`initialize`)."""
    return _started


def process_index() -> int:
    return __import__("jax").process_index() if _started else 0


def process_count() -> int:
    return __import__("jax").process_count() if _started else 1


def is_writer() -> bool:
    """Whether this process writes the run directory (process 0, or a single process)."""
    return process_index() == 0


def part() -> tuple[int, int] | None:
    """(this process, processes) for cutting its rows out of a global batch; None: one."""
    return (process_index(), process_count()) if process_count() > 1 else None


def barrier(name: str) -> None:
    """Wait until every process reaches `barrier(name)` (no-op for one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def broadcast_error(message: str | None) -> None:
    """Process 0's verdict to all: raise `InputError(message)` on every process if
    process 0 had one (the others' `message` is ignored), else return on every one."""
    if process_count() > 1:
        import numpy as np
        from jax.experimental import multihost_utils

        raw = np.frombuffer((message or "").encode("utf-8"), dtype=np.uint8)
        size = int(multihost_utils.broadcast_one_to_all(np.int32(len(raw))))
        buf = np.zeros(size, np.uint8)
        buf[:min(size, len(raw))] = raw[:size]
        if size:
            message = bytes(np.asarray(multihost_utils.broadcast_one_to_all(buf))).decode()
        else:
            message = None
    if message:
        raise InputError(message)


def predict_global(model, batches) -> "list":
    """Outputs of `model` for `batches` (each process's rows of each global batch, as
    `(x,)`), every process getting the whole global batches' outputs (numpy), in order."""
    import jax
    import keras
    import numpy as np

    from kemo.interrupt import interrupt_requested

    dist = keras.distribution.distribution()
    replicated = jax.sharding.NamedSharding(dist.device_mesh.backend_mesh,
                                            jax.sharding.PartitionSpec())

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    step = jax.jit(forward, out_shardings=replicated)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    out = []
    for batch in batches:
        if interrupt_requested():
            raise KeyboardInterrupt
        x = batch[0]
        x = {k: jax.make_array_from_process_local_data(
            dist.get_data_layout(v.shape).backend_layout, v) for k, v in x.items()}
        out.append(np.asarray(step(trainable, non_trainable, x)))
    return out


def leave(code: int) -> int:
    """`code`, or for a process of several that fails: exit now with it. JAX's exit
    handler would wait for the other processes at a shutdown barrier they never reach
    (they wait in a collective for this one); ending at once lets theirs fail fast."""
    if code and _started:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def lost_peer(error: BaseException) -> str | None:
    """The one-line reason when `error` is a collective that failed across processes."""
    if not _started:
        return None
    import jax

    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else type(error).__name__
    if not isinstance(error, jax.errors.JaxRuntimeError) and "Gloo" not in text:
        return None
    if not any(w in text for w in ("Gloo", "gloo", "onnection", "heartbeat", "UNAVAILABLE",
                                   "DEADLINE_EXCEEDED", "coordination")):
        return f"process {process_index()} of {process_count()}: {first}"
    return (f"process {process_index()} of {process_count()}: another process of the run "
            f"stopped or cannot be reached ({first}); stopping this one too (the last "
            "checkpoint stands: --resume continues the run)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs, grace: float) -> None:
    """Wait up to `grace` seconds for `procs` to end, then terminate and kill the rest."""
    deadline = time.time() + grace
    while any(q.poll() is None for q in procs) and time.time() < deadline:
        time.sleep(0.1)
    for q in procs:
        if q.poll() is None:
            q.terminate()
    deadline = time.time() + 5
    while any(q.poll() is None for q in procs) and time.time() < deadline:
        time.sleep(0.1)
    for q in procs:
        if q.poll() is None:
            q.kill()
            q.wait()


PROCESS_MEMORY_GIB = 1.5  # what one training process of kemo needs at least (tiny model)


def local_process_limit() -> tuple[int, str]:
    """(most processes this machine holds, why): one per usable CPU core, and no more
    than the available memory holds at `PROCESS_MEMORY_GIB` each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    limit, why = cores, f"{cores} usable CPU core{'s' * (cores != 1)}"
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
        gib = kib / 2**20
        by_memory = max(1, int(gib // PROCESS_MEMORY_GIB))
        why += f", {gib:.1f} GiB memory available at {PROCESS_MEMORY_GIB} GiB a process"
        limit = min(limit, by_memory)
    except (OSError, StopIteration, ValueError):
        pass
    return max(1, limit), why


def check_local_processes(n: int) -> None:
    """InputError when `--local-processes n` is more than this machine holds."""
    limit, why = local_process_limit()
    if n > limit:
        raise InputError(f"--local-processes {n}: this machine holds at most {limit} "
                         f"processes ({why}); give {limit} or fewer")


def _command(argv: list[str]) -> list[str]:
    """The command line of each process `launch` starts."""
    return [sys.executable, "-m", "kemo.cli", *argv]


def launch(argv: list[str], processes: int, grace: float = HEARTBEAT_SECONDS + 15) -> int:
    """Run `kemo <argv>` as `processes` processes of one run on this machine; returns
    the run's exit code: 0 when all succeed, else the first failure's. Once one fails,
    the others get `grace` seconds to stop by themselves (their next collective fails,
    or the heartbeat times out), then SIGTERM and SIGKILL. Ctrl-C goes to all: the
    handler is in place before the first process starts, and a signal during start-up
    starts no more of them (none is left running)."""
    env = {**os.environ, ADDRESS: f"localhost:{_free_port()}", NUM: str(processes),
           LAUNCHED: "1"}
    env.pop("KEMO_MULTI_HOST", None)
    procs, interrupted = [], []

    def forward(signum, frame):  # Ctrl-C (SIGINT) or SIGTERM: to every process
        interrupted.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Each in its own process group: a terminal's Ctrl-C reaches this launcher only,
        # which passes it on once (a second would stop them at once, not at a batch end).
        for i in range(processes):
            if interrupted:
                break
            procs.append(subprocess.Popen(_command(argv), env={**env, ID: str(i)},
                                          process_group=0))
            if interrupted:  # arrived while it was being started: it has not had it
                procs[-1].send_signal(interrupted[0])
        if interrupted:  # start-up cut short: the started ones cannot form the run
            _stop(procs, 5)
        first = _wait(procs, grace)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return _exit_code(procs, processes, first, interrupted)


def _wait(procs, grace: float):
    """Wait for every process; (index, code) of the first that failed, or None."""
    first = None
    while any(p.poll() is None for p in procs):
        for i, p in enumerate(procs):
            if first is None and p.poll() not in (None, 0):
                first = (i, p.returncode)
                _stop(procs, grace)
        time.sleep(0.1)
    return first


def _exit_code(procs, processes: int, first, interrupted) -> int:
    if first is None:
        codes = [p.returncode for p in procs]
        first = next(((i, c) for i, c in enumerate(codes) if c), None)
    if first is None and not (interrupted and len(procs) < processes):
        return 0
    if interrupted:
        return 130 if interrupted[0] == signal.SIGINT else 128 + interrupted[0]
    i, code = first
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    log.error(f"error: process {i} of {processes} stopped ({how}): the run stopped")
    return code if code > 0 else 1
