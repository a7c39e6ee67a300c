"""``python -m aligngate`` works like the ``aligngate`` command."""

import sys

from pytest_aligngate.cli import main

sys.exit(main())
