"""A content-addressed cache of model responses and judge scores, on disk in SQLite (WAL).

Every paid call passes through it: :class:`CachedAdapter` wraps any :class:`ModelAdapter`, and
:class:`CachedJudge` wraps the judge (its key adds the judge model and the rubric version; only
replies that parsed are kept). Each answer is committed as soon as it arrives, so an interrupted
run resumes without asking again for what it already has. Several processes (xdist workers, CI
jobs on one runner) may read and write the same file at once.

Modes, as in vcrpy: ``read_write`` (replay hits, record misses), ``read_only`` (replay only; a miss
is an error, for offline CI), ``refresh`` (ask again and overwrite), ``off`` (no cache)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from pytest_aligngate.errors import AdapterError
from pytest_aligngate.models.base import ModelAdapter, SamplingParams
from pytest_aligngate.records import Completion

CacheMode = Literal["read_write", "read_only", "refresh", "off"]
CACHE_FILE = "responses.sqlite"
BUSY_TIMEOUT_MS = 30_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(parts: dict[str, Any]) -> str:
    """The SHA-256 of the canonical JSON of ``parts``."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _setup(conn: sqlite3.Connection) -> None:
    """WAL mode and the table; retried, as switching the journal mode of a file that another
    process is creating at the same moment can report "locked" without waiting."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    size_bytes: int
    entries: dict[tuple[str, str], int]
    """Entries per (kind, model)."""

    def render(self) -> str:
        lines = [f"cache: {self.path} ({self.size_bytes / 1024:.1f} KiB)"]
        if not self.entries:
            lines.append("  empty")
        for (kind, model), count in sorted(self.entries.items()):
            lines.append(f"  {kind:<9} {model:<40} {count:>7}")
        return "\n".join(lines)


class ResponseCache:
    """Entries keyed by content hash in one SQLite file; one connection per process and thread."""

    def __init__(self, directory: Path, mode: CacheMode = "read_write") -> None:
        self.path = Path(directory) / CACHE_FILE
        self.mode = mode
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.before_first_call: Callable[[], Coroutine[Any, Any, None]] | None = None
        """Awaited before the first call a miss sends to an endpoint (the session's model list check)."""
        self._first_call: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                _setup(conn)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                conn.close()
                self._set_aside(exc)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                _setup(conn)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @property
    def reads(self) -> bool:
        return self.mode in ("read_write", "read_only")

    @property
    def writes(self) -> bool:
        return self.mode in ("read_write", "refresh")

    def _execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        """Run one statement; a file that is not a readable SQLite database is set aside and replaced."""
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            self._set_aside(exc)
            return self._connection().execute(sql, parameters).fetchall()

    def _set_aside(self, error: Exception) -> None:
        """Move a corrupted cache file out of the way (kept for inspection) and start a fresh one."""
        self.close()
        moved = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            try:
                source.rename(moved.with_name(moved.name + suffix))
            except FileNotFoundError:  # another process set it aside first
                continue
        logging.getLogger("aligngate").warning(
            f"cache {self.path} could not be read ({error}); moved it to {moved} and started an empty cache"
        )

    async def before_asking(self) -> None:
        """Run :attr:`before_first_call` once per event loop; misses arriving meanwhile wait for it,
        and its error is raised to each of them."""
        if self.before_first_call is None:
            return
        loop = asyncio.get_running_loop()
        task = self._first_call.get(loop)
        if task is None:
            task = self._first_call[loop] = loop.create_task(self.before_first_call())
        await asyncio.shield(task)

    def get(self, key: str) -> dict[str, Any] | None:
        rows = self._execute("SELECT value FROM entries WHERE key = ?", (key,))
        if not rows:
            return None
        try:
            value = json.loads(rows[0][0])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, kind: str, model: str, value: dict[str, Any]) -> None:
        self._execute(
            "INSERT OR REPLACE INTO entries (key, kind, model, value, created) VALUES (?, ?, ?, ?, ?)",
            (key, kind, model, json.dumps(value), time.time()),
        )

    def info(self) -> CacheInfo:
        if not self.path.is_file():
            return CacheInfo(self.path, 0, {})
        rows = self._execute("SELECT kind, model, COUNT(*) FROM entries GROUP BY kind, model")
        entries = {(kind, model): count for kind, model, count in rows}
        size = sum(p.stat().st_size for p in self.path.parent.glob(f"{CACHE_FILE}*"))
        return CacheInfo(self.path, size, entries)

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        if not self.path.is_file():
            return 0
        conn = self._connection()
        (count,) = conn.execute("SELECT COUNT(*) FROM entries").fetchone()
        conn.execute("DELETE FROM entries")
        conn.execute("VACUUM")
        return int(count)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def miss_error(self, endpoint: str, model: str) -> AdapterError:
        return AdapterError(
            endpoint,
            model,
            "cache_miss",
            f"no cached answer in {self.path} and the cache mode is read_only "
            "(record it first with cache mode read_write)",
        )


class CachedAdapter:
    """A :class:`ModelAdapter` that answers from the cache and records what it had to ask.

    The key holds the adapter kind, endpoint, model, the request as the adapter sends it (messages
    and sampling params after role overrides, where the adapter can say) and the sample index: the
    n-th identical request of a run is sample n, so ``samples_per_prompt`` answers of one prompt
    are cached apart even when no seed tells them apart.
    """

    def __init__(self, inner: ModelAdapter, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.adapter_kind = type(inner).__name__
        self.model = inner.model
        self.endpoint = inner.endpoint
        self._seen: Counter[str] = Counter()

    def key(self, messages: list[dict[str, str]], params: SamplingParams, sample_index: int) -> str:
        fields: dict[str, object] = {
            "messages": messages,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "logprobs": params.logprobs,
        }
        describe = getattr(self.inner, "request", None)
        if describe is not None:  # the request as sent, with role overrides (system prompt, extra_body, ...)
            fields = {"request": describe(messages, params)}
        identity = {"kind": "chat", "adapter": self.adapter_kind, "endpoint": self.endpoint}
        return cache_key({**identity, "model": self.model, **fields, "sample": sample_index})

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        first = self.key(messages, params, 0)
        sample_index = self._seen[first]
        self._seen[first] += 1
        key = first if sample_index == 0 else self.key(messages, params, sample_index)
        if self.cache.reads:
            hit = self.cache.get(key)
            cached = _valid_completion(hit)
            if cached is not None:
                self.cache.hits[self.model] += 1
                return cached
            if self.cache.mode == "read_only":
                raise self.cache.miss_error(self.endpoint, self.model)
        self.cache.misses[self.model] += 1
        await self.cache.before_asking()
        completion = await self.inner.complete(messages, params)
        if self.cache.writes:
            self.cache.put(key, "response", self.model, completion.model_dump(mode="json"))
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()


def _valid_completion(entry: dict[str, Any] | None) -> Completion | None:
    """A cached answer, or None when there is none or it does not validate (then it is re-asked)."""
    if entry is None:
        return None
    try:
        return Completion.model_validate(entry)
    except ValidationError:
        return None
