"""Exception types. Each message names the problem and the fix.

The CLI maps :class:`UsageError` (and its subclasses) to exit code 2, any other failure to exit code 1 and an
interruption (:class:`KeyboardInterrupt`, :class:`TrainingInterrupted`) to 130, so scripts can tell "you asked for
something wrong" from "something broke while doing it" from "stopped on request".
"""

from __future__ import annotations


class RlcfError(Exception):
    """Base class for rlcf's own errors."""


class UsageError(RlcfError, ValueError):
    """Bad input from the user: a name, a config value, a path. CLI exit code 2."""


class ConfigError(UsageError):
    """A config field has a bad value, a bad type, or does not exist.

    Args:
        field: dotted path of the offending field (``"run.seed"``), or ``""`` for the whole config.
        message: what is wrong and what is allowed.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"config field '{field}': {message}" if field else message)


class UnknownNameError(UsageError, KeyError):
    """A name that is not registered. The message lists the valid names and the closest match."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ""


class CorruptDatasetError(UsageError):
    """A dataset on disk is damaged, truncated or not an rlcf multi-agent dataset (refused, never half-read)."""


class RegistrationError(RlcfError):
    """A different object was registered under a name that is already taken."""


class CheckpointError(RlcfError):
    """A checkpoint is missing, unreadable or does not match the run."""


class ConformanceError(RlcfError, AssertionError):
    """A user plugin (env, reward function, ...) fails one of rlcf's conformance checks."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after a step, with a checkpoint at that step; the message says how to
    resume. A :class:`KeyboardInterrupt`, so code that cleans up after Ctrl-C does so here too. CLI exit code 130."""
