"""The ``aligngate.yaml`` configuration: its schema (``schema``), finding and loading the file
(``load``), and the YAML reader that locates every error at file, line and key (``yamlsource``)."""

from __future__ import annotations

from pytest_aligngate.config.load import DEFAULT_CONFIG_NAME, load_config
from pytest_aligngate.config.schema import AligngateConfig, ConfigError

__all__ = ["DEFAULT_CONFIG_NAME", "AligngateConfig", "ConfigError", "load_config"]
