"""Suites: named groups of env specs that are evaluated and reported together."""

from __future__ import annotations

from dataclasses import dataclass

from rlcf.registry import envs, suites

__all__ = ["Suite", "register_suite"]


@dataclass(frozen=True)
class Suite:
    """A named tuple of env ids.

    Attributes:
        name: registry name (``"mpe"``).
        envs: env ids in :data:`rlcf.registry.envs`.
        description: one line for ``rlcf list suites``.
    """

    name: str
    envs: tuple[str, ...]
    description: str = ""

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        return self.description

    def specs(self) -> list:
        """The env specs, in order (unknown ids raise with the valid ones listed)."""
        return [envs.get(env_id) for env_id in self.envs]


def register_suite(name: str, env_ids: tuple[str, ...], description: str) -> Suite:
    suite = Suite(name, env_ids, description)
    suites.register(name, suite)
    return suite
