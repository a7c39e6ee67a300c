"""Alias of :mod:`pytest_aligngate.config`."""

from pytest_aligngate.config import AligngateConfig, ConfigError, load_config

__all__ = ["AligngateConfig", "ConfigError", "load_config"]
