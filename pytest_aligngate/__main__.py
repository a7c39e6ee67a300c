"""``python -m pytest_aligngate`` works like the ``aligngate`` command."""

from __future__ import annotations

import sys

from pytest_aligngate.cli import main

sys.exit(main())
