"""Where models live: the adapters that answer a chat, and the factory that builds one per role."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_aligngate.config.schema import (
    AligngateConfig,
    ResolvedRole,
    RoleName,
    local_runtime,
)
from pytest_aligngate.models.base import ModelAdapter
from pytest_aligngate.models.openai_compat import AzureOpenAIAdapter, HuggingFaceAdapter, OpenAICompatAdapter

if TYPE_CHECKING:
    from pytest_aligngate.models.budget import Budget


def endpoint_adapter(settings: ResolvedRole, model: str, budget: Budget | None = None) -> OpenAICompatAdapter:
    """The HTTP adapter for ``model`` on one role's endpoint (by ``settings.adapter``)."""
    if settings.adapter == "azure":
        return AzureOpenAIAdapter.from_settings(
            settings, model, api_version=settings.api_version, budget=budget
        )
    if settings.adapter == "huggingface":
        return HuggingFaceAdapter.from_settings(settings, model, budget=budget)
    return OpenAICompatAdapter.from_settings(settings, model, budget=budget)


def model_adapter(
    config: AligngateConfig,
    role: RoleName,
    model: str,
    *,
    max_retries: int | None = None,
    budget: Budget | None = None,
) -> ModelAdapter:
    """The adapter for the ``base`` or ``candidate`` model ``model``, with that role's settings.

    Model ids such as ``org/name:provider`` go to the server unchanged. ``max_retries`` overrides the
    configured retries (``aligngate doctor`` checks with few). Calls over HTTP draw on ``budget``
    (local models are free).

    Raises:
        ConfigError: the role's settings do not resolve, or a budget is set and the model has no price.
    """
    settings = config.role_settings(role)
    runtime = local_runtime(settings.adapter, model)
    if runtime == "transformers":
        from pytest_aligngate.models.transformers_local import TransformersAdapter

        return TransformersAdapter.from_settings(settings, model, repeat_penalty=config.models.repeat_penalty)
    if runtime == "llama_cpp":
        from pytest_aligngate.models.llama_cpp import LlamaCppAdapter

        return LlamaCppAdapter(model, repeat_penalty=config.models.repeat_penalty)
    if max_retries is not None:
        settings = replace(settings, max_retries=max_retries)
    return endpoint_adapter(settings, model, budget)


def judge_adapter(
    config: AligngateConfig, *, max_retries: int | None = None, budget: Budget | None = None
) -> ModelAdapter:
    """The adapter for the judge model (the ``judge`` section over the shared ``models`` settings)."""
    settings = config.role_settings("judge")
    if max_retries is not None:
        settings = replace(settings, max_retries=max_retries)
    return endpoint_adapter(settings, settings.model or "", budget)
