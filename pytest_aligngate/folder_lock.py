"""One run owns an output folder: an advisory lock file that the operating system releases when the
process ends, however it ends (so a killed run never leaves a stale lock behind)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_FILE = ".aligngate.lock"


class FolderInUse(RuntimeError):
    """Another process holds the folder."""


@dataclass
class FolderLock:
    """A held claim on a folder; released when closed or when the process exits."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        self.handle.close()


def claim(folder: Path) -> FolderLock:
    """Claim ``folder`` for this process (creating it), or raise :class:`FolderInUse` naming the holder.

    Uses ``fcntl.flock`` where the platform has it; elsewhere the claim always succeeds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = path.open("a+", encoding="utf-8")
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return FolderLock(path, handle)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise FolderInUse(
            f"output folder {folder} is in use by another aligngate run (process {holder}); "
            "wait for it to finish or choose another --output-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return FolderLock(path, handle)
