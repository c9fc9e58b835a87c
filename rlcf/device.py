"""Device selection: CUDA when present, CPU otherwise; every GPU code path also runs on CPU."""

from __future__ import annotations

from rlcf.errors import ConfigError


def resolve_device(spec: str = "auto", field: str = "run.device"):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` into a ``torch.device``.

    Raises:
        ConfigError: the device was asked for explicitly but is not available here.
    """
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(field, f"{spec!r} was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(field, f"{spec!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(field, "'mps' was asked for but is not available; use 'auto' or 'cpu'")
    return torch.device(spec)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def keep_freed_cpu_memory(enabled: bool = True) -> bool:
    """Let glibc's malloc reuse freed large blocks instead of returning them to the OS (Linux/glibc; else a no-op).

    A CPU training step allocates and frees the same multi-megabyte activations every update (CFCQL's
    counterfactual rows are ``[2, B·n·K, 64]`` floats, 16 MB at batch 1024). By default glibc serves such blocks
    with fresh ``mmap`` pages and unmaps them on free, so every step page-faults its activations in again: about
    a third of a batch-1024 CFCQL update (bench/results/cfcql_speed.md). This raises the mmap threshold to its
    maximum (32 MB) and stops heap trimming, so freed blocks are reused; the process keeps its peak heap.
    ``enabled=False`` restores glibc's initial thresholds (128 KiB; for A/B measurements).

    Returns:
        True if the setting was applied.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs without mallopt
        return False
    mmap_threshold, trim_threshold = (32 << 20, 1 << 30) if enabled else (128 << 10, 128 << 10)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
