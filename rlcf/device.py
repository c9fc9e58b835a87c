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
