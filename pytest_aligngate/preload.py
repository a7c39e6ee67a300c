"""The heavy imports a run needs once it calls an endpoint (the SDK, scipy), started in a background
thread at the first call so they load while answers are awaited. A rerun served from the cache, with
its verdicts reused (``gate.memo``), never starts it and never loads either."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_started = False


def start() -> None:
    """Start the imports in a daemon thread (once per process; later calls do nothing)."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_imports, name="aligngate-preload", daemon=True).start()


def _imports() -> None:
    import openai  # noqa: F401
    import scipy.stats  # noqa: F401
