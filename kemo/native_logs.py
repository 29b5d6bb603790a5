"""Drop the C++ start-up chatter of TensorFlow/XLA from stderr, keep everything else.

TensorFlow and XLA print absl lines such as "oneDNN custom operations are on" or
"failed call to cuInit" on every start, before Python can configure logging. The
command line routes fd 2 through a filter that drops those known lines, so a user
error reads as the one `error: ...` line it is.

Example:
    with filtered_native_logs():
        run_command()
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IWE]\d{4} [\d:. ]+\d+ (port|cudart_stub|cuda_platform|cpu_feature_guard"
    rb"|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|gpu_device|cpu_utils|util)\.cc:\d+\])"
)


@contextlib.contextmanager
def filtered_native_logs():
    """Within the block, stderr lines matching `NOISE` are dropped."""
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. captured by a test runner)
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not NOISE.match(line):
                    os.write(original, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the pump drains and ends
        thread.join(timeout=5)
        os.close(original)
