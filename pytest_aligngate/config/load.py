"""Finding and loading ``aligngate.yaml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    ValidationError,
)

from pytest_aligngate.config.schema import ROLES, AligngateConfig, ConfigError, RoleError
from pytest_aligngate.config.yamlsource import SourceError, load_yaml, validation_errors

DEFAULT_CONFIG_NAME = "aligngate.yaml"


def load_config(path: str | Path | None = None) -> AligngateConfig:
    """Load a config file; with no path, ``./aligngate.yaml`` if present, else all defaults.

    Raises:
        ConfigError: the file is missing (when named), not YAML, or fails validation.
    """
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        if not candidate.is_file():
            return AligngateConfig()
        path = candidate
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        doc = load_yaml(path)
    except SourceError as exc:
        raise ConfigError(str(exc)) from exc
    if doc.data is None:
        return AligngateConfig(source=path.resolve())
    if not isinstance(doc.data, dict):
        raise ConfigError(str(SourceError(path, "expected a mapping of sections (models, judge, ...)", 1)))
    try:
        config = AligngateConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_errors(doc, exc.errors())) from exc
    config.source = path.resolve()
    problems = []
    for role in ROLES:
        try:
            config.role_settings(role)
        except RoleError as exc:
            problems.append(str(SourceError(path, exc.message, doc.line_of(exc.loc), ".".join(exc.loc))))
    for model in config.unpriced_models():
        message = f"no price for model {model!r}: add pricing.{model} (input, output: USD per million tokens)"
        problems.append(str(SourceError(path, message, doc.line_of(("budget",)), "budget")))
    if problems:
        raise ConfigError("\n".join(problems))
    return config
