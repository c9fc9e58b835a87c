"""Starting or joining a Ray cluster the same way everywhere in rlcf."""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def ensure_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> bool:
    """Initialise Ray unless it already is; returns True when this call started it.

    ``address=None`` starts a local single-machine cluster (or joins ``RAY_ADDRESS`` when set). Ray 2.60
    turns token auth on after a local start writes ``~/.ray/auth_token``; unless the caller chose
    ``RAY_AUTH_MODE``, a local start sets it to ``disabled`` so later local job clients are not rejected.
    """
    import ray

    if ray.is_initialized():
        return False
    if address is None and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": logging.WARNING}
    if address is None and num_cpus is not None:
        options["num_cpus"] = num_cpus
    options.update(kwargs)
    ray.init(address=address, **options)
    log.info("Ray started: %s", ray.cluster_resources())
    return True
