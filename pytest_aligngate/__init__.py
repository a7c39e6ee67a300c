"""pytest-aligngate: an alignment-regression gate for fine-tuned language models."""

__version__ = "0.1.0"
