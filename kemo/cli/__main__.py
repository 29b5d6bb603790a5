"""`python -m kemo.cli ARGS...`, the same as `kemo ARGS...`."""

import sys

from kemo.cli import main

sys.exit(main())
