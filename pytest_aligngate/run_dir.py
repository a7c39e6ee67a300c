"""The output folder of one run: its layout (``rows/``, ``verdicts/``, ``drift.json``, ``cache/``,
the budget ledger), its files on disk, and the lock that makes one run own it.

Every process of a run (the CLI, or pytest's controller and its xdist workers) writes here; the
reports are made from what is on disk, so they never depend on ``-n``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_aligngate.records import AxisVerdict, ProbeResult
from pytest_aligngate.safe_text import redact

ROWS_DIR = "rows"
CACHE_DIR = "cache"
DRIFT_FILE = "drift.json"
VERDICTS_DIR = "verdicts"
LEDGER_FILE = "budget.sqlite"


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


@dataclass(frozen=True)
class RunDir:
    """Where one run keeps its files: ``root`` is the output folder."""

    root: Path

    def rows_path(self, axis: str) -> Path:
        return self.root / ROWS_DIR / f"{axis}.jsonl"

    def verdict_path(self, axis: str) -> Path:
        return self.root / VERDICTS_DIR / f"{axis}.json"

    @property
    def drift_path(self) -> Path:
        return self.root / DRIFT_FILE

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILE

    def cache_dir(self, configured: str | None) -> Path:
        """The response cache's folder: ``cache.dir`` when set, else ``<output>/cache``."""
        return Path(configured) if configured else self.root / CACHE_DIR

    def clear(self) -> None:
        """Remove the rows, verdicts, drift check and budget ledger of an earlier run."""
        for name in (ROWS_DIR, VERDICTS_DIR):
            shutil.rmtree(self.root / name, ignore_errors=True)
        self.drift_path.unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):  # the budget ledger and its WAL files
            self.ledger_path.with_name(LEDGER_FILE + suffix).unlink(missing_ok=True)

    def write_verdict(self, run_id: str, verdict: AxisVerdict, corpus_files: Sequence[Path]) -> None:
        """Keep one axis's verdict, tagged with the run id and the corpus files it came from."""
        path = self.verdict_path(verdict.axis)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "run_id": run_id,
            "verdict": verdict.model_dump(mode="json"),
            "corpus_files": [str(p) for p in corpus_files],
        }
        path.write_text(redact(json.dumps(payload, indent=2)), encoding="utf-8")

    def results(self, run_id: str) -> tuple[list[AxisVerdict], list[ProbeResult], list[Path]]:
        """Verdicts and rows written by run ``run_id`` (by any process), in axis order; files left by
        another run are never mixed in."""
        verdicts: list[AxisVerdict] = []
        rows: list[ProbeResult] = []
        files: list[Path] = []
        for path in sorted((self.root / VERDICTS_DIR).glob("*.json")):
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("run_id") != run_id:
                continue
            verdict = AxisVerdict.model_validate(payload["verdict"])
            verdicts.append(verdict)
            files += [Path(p) for p in payload["corpus_files"] if Path(p) not in files]
            if self.rows_path(verdict.axis).is_file():
                rows += read_rows(self.rows_path(verdict.axis))
        return verdicts, rows, files
