"""wattlm.data: raw documents -> a clean, deduplicated corpus with a train / held-out split and a report."""

from wattlm.data.config import DataConfig
from wattlm.data.pipeline import build_corpus
from wattlm.data.report import DataReport

__all__ = ["DataConfig", "DataReport", "build_corpus"]
