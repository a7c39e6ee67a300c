"""Alias of :mod:`pytest_aligngate.config`."""

from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import AligngateConfig, ConfigError

__all__ = ["AligngateConfig", "ConfigError", "load_config"]
