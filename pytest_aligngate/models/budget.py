"""Cost: prices per model, the cost estimate in reports, and a run's spending cap (``budget``).

Before a call is sent its worst case is reserved: the prompt's estimated tokens plus its
``max_tokens`` at the model's prices. A call whose worst case would take the run past the budget is
not sent (:class:`BudgetExceeded`); once answered, the reservation becomes the real cost from the
reply's usage (the worst case when the server reports none; nothing when the call failed). So the
run stops cleanly before the budget is exceeded. The ledger is a small SQLite file in the output
folder, keyed by run id, so every xdist worker of a run draws on the same budget."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pytest_aligngate.config.schema import ConfigError, ModelPrice
from pytest_aligngate.records import ProbeResult, Usage
from pytest_aligngate.run_dir import LEDGER_FILE

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    run TEXT NOT NULL, model TEXT NOT NULL, reserved REAL NOT NULL, spent REAL
)
"""


class BudgetExceeded(Exception):
    """A call was not sent because its worst-case cost would take the run past the budget."""

    def __init__(self, model: str, worst_case: float, spent: float, limit: float) -> None:
        self.model = model
        super().__init__(
            f"budget of ${limit:.4f} reached: ${spent:.4f} spent or reserved, the next call to {model!r} "
            f"could cost up to ${worst_case:.4f}; raise `budget` and rerun (answers so far are cached)"
        )


def call_cost(price: ModelPrice, usage: Usage) -> float:
    """USD of one call's tokens at ``price`` (USD per million tokens)."""
    return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000


def cost_by_role(
    rows: Iterable[ProbeResult], models: Mapping[str, str], prices: Mapping[str, ModelPrice]
) -> dict[str, float]:
    """Estimated USD per role (base, candidate, judge) and in total, for roles whose model has a price."""
    costs: dict[str, float] = {}
    for row in rows:
        for role, usage in ((row.role, row.usage), ("judge", row.judge_usage)):
            price = prices.get(models[role])
            if price is not None:
                costs[role] = costs.get(role, 0.0) + call_cost(price, usage)
    if costs:
        costs["total"] = sum(costs.values())
    return costs


class Budget:
    """A run's spending cap in USD, drawn on by every adapter (and process) of the run."""

    def __init__(self, limit: float, prices: Mapping[str, ModelPrice], folder: Path, run_id: str) -> None:
        self.limit = limit
        self.prices = dict(prices)
        self.run_id = run_id
        self.path = folder / LEDGER_FILE
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def price(self, model: str) -> ModelPrice:
        """The price of ``model``.

        Raises:
            ConfigError: the model has no entry in ``pricing`` (a budget needs every called model's price).
        """
        price = self.prices.get(model)
        if price is None:
            raise ConfigError(
                f"budget: pricing has no entry for model {model!r}: add pricing.{model} "
                "(input and output, USD per million tokens)"
            )
        return price

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")  # commits without an fsync each: the ledger is hot
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        return self._db

    def _total(self, db: sqlite3.Connection) -> float:
        query = "SELECT COALESCE(SUM(COALESCE(spent, reserved)), 0) FROM calls WHERE run = ?"
        return float(db.execute(query, (self.run_id,)).fetchone()[0])

    def spent(self) -> float:
        """USD this run has spent, counting calls still in flight at their worst case."""
        with self._lock:
            return self._total(self._connect())

    def _reserve(self, model: str, worst_case: float) -> int:
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")  # one reservation at a time across processes
            try:
                total = self._total(db)
                if total + worst_case > self.limit:
                    raise BudgetExceeded(model, worst_case, total, self.limit)
                ticket = db.execute(
                    "INSERT INTO calls (run, model, reserved) VALUES (?, ?, ?)",
                    (self.run_id, model, worst_case),
                ).lastrowid
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        assert ticket is not None
        return ticket

    def _settle(self, ticket: int, cost: float) -> None:
        with self._lock:
            self._connect().execute("UPDATE calls SET spent = ? WHERE rowid = ?", (cost, ticket))

    @contextmanager
    def charge(self, model: str, prompt_tokens: int, max_tokens: int) -> Iterator[Charge]:
        """Reserve a call's worst case; on leaving, settle at the usage set on the yielded :class:`Charge`.

        Raises:
            BudgetExceeded: the call would take the run past the budget; nothing was reserved.
        """
        price = self.price(model)
        worst = Usage(prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
        charge = Charge()
        ticket = self._reserve(model, call_cost(price, worst))
        try:
            yield charge
        except BaseException:
            self._settle(ticket, 0.0)
            raise
        self._settle(ticket, call_cost(price, charge.usage or worst))


class Charge:
    """One call being paid for: set :attr:`usage` from the reply (None: charged at its worst case)."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
