"""kemo's one logging convention (`kemo.log`): library code logs, the CLI prints.

The scan that library code never prints is in `tests/test_package_map.py`; here, what
the console shows with and without `to_console()`.
"""

import json
import logging
import subprocess
import sys
from types import SimpleNamespace

import kemo.log
from kemo.evaluation.finish import decides_with

NOTE = "note: thresholds.per_language needs thresholds.tune = true: the run decides at 0.5"
ONLY_PER_LANGUAGE = SimpleNamespace(per_language=True, tune=False)


def test_the_console_shows_info_on_stdout_and_warnings_on_stderr_as_written(capsys):
    kemo.log.to_console()
    kemo.log.to_console()  # a second call adds no second handler
    logging.getLogger("kemo.training").info("tokenised in 1.0s")
    assert decides_with(ONLY_PER_LANGUAGE, warn=True) == "threshold_0.5"
    out, err = capsys.readouterr()
    assert out == "tokenised in 1.0s\n"
    assert err == NOTE + "\n"


def test_warnings_only_hides_progress_for_the_block(capsys):
    logger = kemo.log.to_console()
    with kemo.log.warnings_only():
        logging.getLogger("kemo.training").info("backbone: loaded")
        decides_with(ONLY_PER_LANGUAGE, warn=True)
    logging.getLogger("kemo.training").info("after")
    out, err = capsys.readouterr()
    assert out == "after\n" and err == NOTE + "\n"
    assert logger.level == logging.INFO


def test_a_library_user_sees_warnings_but_no_progress_until_to_console():
    code = (
        "import json, logging, sys\n"
        "from types import SimpleNamespace\n"
        "from kemo.evaluation.finish import decides_with\n"
        "t = SimpleNamespace(per_language=True, tune=False)\n"
        "logging.getLogger('kemo.training').info('progress before')\n"
        "decides_with(t, warn=True)\n"
        "import kemo.log; kemo.log.to_console()\n"
        "logging.getLogger('kemo.training').info('progress after')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "progress after\n"
    assert proc.stderr == NOTE + "\n", json.dumps(proc.stderr)
