"""Keeping Hugging Face libraries quiet where rlcf reports progress itself: the LLM trainers and their shared
pieces (:mod:`rlcf.algos.llm_common`, :mod:`rlcf.algos.llm_trainer`) wrap transformers, datasets and TRL in these.

transformers, datasets and TRL are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["quiet_trainer", "quiet_transformers"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide what a user cannot act on: transformers' v6 renaming FutureWarnings raised inside TRL, its
    weight-loading / shard-writing bars and datasets' map bars (rlcf shows its own progress)."""
    import datasets
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    datasets_bars = datasets.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()  # TRL's per-dataset map bars ("Tokenizing train dataset", ...)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6.*", category=FutureWarning)
        try:
            yield
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
            if datasets_bars:
                datasets.enable_progress_bars()


def quiet_trainer(trainer: Any) -> Any:
    """Take TRL's stdout printers off ``trainer`` (its logs reach the run through
    :func:`rlcf.algos.llm_trainer.trainer_callbacks`)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer
