"""The output folder of one run: its layout (rows/, verdicts/, drift.json, cache/), its rows on disk,
and the lock that makes one run own it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_aligngate.records import ProbeResult
from pytest_aligngate.safe_text import redact


def write_rows(path: Path, rows: Iterable[ProbeResult]) -> None:
    """Per-prompt rows as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact("".join(row.model_dump_json() + "\n" for row in rows)), encoding="utf-8")


def read_rows(path: Path) -> list[ProbeResult]:
    return [
        ProbeResult.model_validate_json(line)
        for line in path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 is in answers
        if line
    ]

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
