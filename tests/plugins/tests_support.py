"""Helpers for tests that start subprocesses which must see the test plugins."""

from __future__ import annotations

import os
from pathlib import Path

PLUGINS = Path(__file__).parent


def plugin_pythonpath(*extra: Path) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(p) for p in extra] + [str(PLUGINS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["RLCF_QUIET"] = "1"
    return env


def tensorboard_scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of every TensorBoard event file under ``logdir``, read record by record.

    A record torn by a killed process ends its file's reading; a ``SessionLog.START`` at step ``s`` (a resumed
    run's purge) drops the events at or after ``s`` read from earlier files, as TensorBoard does.
    """
    import struct

    from tensorboardX.proto.event_pb2 import Event, SessionLog

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            body = data[at + 12:at + 12 + length]
            if len(body) < length or at + 16 + length > len(data):
                break
            at += 16 + length
            event = Event.FromString(body)
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                for steps in scalars.values():
                    for s in [s for s in steps if s >= event.step]:
                        del steps[s]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[int(event.step)] = value.simple_value
    return scalars
