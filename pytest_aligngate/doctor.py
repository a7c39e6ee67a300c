"""``aligngate doctor``: one tiny request per role, to check endpoints, keys and model ids before a run.

Prints per role the endpoint, the model asked and the model that answered, the latency, and which
environment variable the key comes from (whether it is set; never its value).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import ROLES, AligngateConfig, ConfigError, RoleName
from pytest_aligngate.errors import EXIT_API, EXIT_CONFIG, EXIT_PASS, AdapterError, AdapterUnavailable
from pytest_aligngate.judging.reasoning import answer_text
from pytest_aligngate.models.base import ModelAdapter, SamplingParams
from pytest_aligngate.options import RunOptions
from pytest_aligngate.safe_text import single_line

PING = [{"role": "user", "content": "Reply with the single word OK."}]
PING_PARAMS = SamplingParams(temperature=0.0, max_tokens=16)
PING_RETRIES = 1


@dataclass(frozen=True)
class RoleCheck:
    """The outcome of one role's ping."""

    role: RoleName
    model: str
    endpoint: str
    key: str
    latency_ms: float | None = None
    answered_as: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        head = f"{self.role:<9} {'ok' if self.ok else 'FAIL':<4} {self.endpoint}  model {self.model!r}"
        if not self.ok:
            return f"{head}\n          {self.error}\n          key: {self.key}"
        answered = "" if self.answered_as in (None, self.model) else f" (answered as {self.answered_as!r})"
        notes = "".join(f"; {note}" for note in self.notes)
        return f"{head}{answered}  {self.latency_ms:.0f} ms  key: {self.key}{notes}"


def _key(config: AligngateConfig, role: RoleName) -> str:
    settings = config.role_settings(role)
    if settings.api_key_env is None:
        return "none"
    return f"{settings.api_key_env} ({'set' if settings.api_key() else 'not set'})"


async def _ping(role: RoleName, adapter: ModelAdapter, key: str) -> RoleCheck:
    check = getattr(adapter, "check_listed", None)
    try:
        listed = False if check is None else await check()
    except AdapterError as exc:
        await adapter.aclose()
        return RoleCheck(role, adapter.model, adapter.endpoint, key, error=f"{exc.cause}: {exc.detail}")
    started = time.perf_counter()
    try:
        reply = await adapter.complete(PING, PING_PARAMS)
    except AdapterError as exc:
        return RoleCheck(role, adapter.model, adapter.endpoint, key, error=f"{exc.cause}: {exc.detail}")
    finally:
        await adapter.aclose()
    latency = (time.perf_counter() - started) * 1000
    notes = []
    if reply.usage.prompt_tokens == reply.usage.completion_tokens == 0:
        notes.append("no token usage reported")
    if answer_text(reply.text) != reply.text.strip():
        notes.append("reasoning in <think> (stripped before judging)")
    answered = single_line(reply.model) or None  # the server's text: one inert line
    if check is not None and not listed:
        notes.append("the server lists no models: the id is not checked (a typo may reach a default model)")
    return RoleCheck(role, adapter.model, adapter.endpoint, key, latency, answered, tuple(notes))


def adapters_for(config: AligngateConfig, models: dict[RoleName, str | None]) -> dict[RoleName, ModelAdapter]:
    """One adapter per role, with few retries so a dead endpoint fails fast.

    Raises:
        ConfigError: a role has no model id, or its settings do not resolve.
        AdapterUnavailable: an adapter cannot be built here.
    """
    from pytest_aligngate.models import judge_adapter, model_adapter

    built: dict[RoleName, ModelAdapter] = {}
    for role in ROLES:
        if role == "judge":
            if config.judge.adapter != "embedding":  # the local embedding judge makes no request
                built[role] = judge_adapter(config, max_retries=PING_RETRIES)
            continue
        model = models.get(role) or config.role_settings(role).model
        if not model:
            raise ConfigError(f"{role}: no model id (give --{role} or set models.{role}.model)")
        built[role] = model_adapter(config, role, model, max_retries=PING_RETRIES)
    return built


async def check_roles(config: AligngateConfig, models: dict[RoleName, str | None]) -> list[RoleCheck]:
    """Ping every role concurrently; see :func:`adapters_for` for what is raised."""
    adapters = adapters_for(config, models)
    return list(await asyncio.gather(*(_ping(role, a, _key(config, role)) for role, a in adapters.items())))


def run_doctor(options: RunOptions) -> int:
    """Check every role and print one line each; exit 0 when all answered, 2 on config errors, 3 otherwise."""
    try:
        config = options.apply(load_config(options.config))
        checks = asyncio.run(check_roles(config, {"base": options.base, "candidate": options.candidate}))
    except (ConfigError, AdapterUnavailable) as exc:
        print(f"aligngate doctor: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"config: {config.source or 'defaults (no aligngate.yaml)'}")
    for check in checks:
        print(check.line())
    failed = [check.role for check in checks if not check.ok]
    if failed:
        print(f"\nFAIL: {', '.join(failed)} did not answer")
        return EXIT_API
    print("\nOK: every role answered")
    return EXIT_PASS
