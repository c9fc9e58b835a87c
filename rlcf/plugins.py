"""User plugins: modules whose import registers rewards, envs, policies or algorithms.

A plugin is any Python module that registers things when imported (``@rlcf.register_reward``,
``@rlcf.registry.envs.register``, ...). Three ways to load one:

- ``rlcf --plugin my_pkg.rewards ...`` or ``rlcf --plugin path/to/my_rewards.py ...`` (repeatable);
- ``plugins: [my_pkg.rewards, my_rewards.py]`` at the top of an experiment YAML (imported before the config is
  validated; a relative ``.py`` path is read from the YAML file's folder);
- an entry point in the ``rlcf.plugins`` group of an installed package, imported the first time a registry
  lookup misses::

      [project.entry-points."rlcf.plugins"]
      my_pkg = "my_pkg.rewards"

Loaded plugins are also put in ``RLCF_PLUGINS`` (``os.pathsep``-separated), so processes rlcf starts (Ray
workers on this machine, Ray jobs) import them too.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from rlcf.errors import UsageError

log = logging.getLogger(__name__)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "load_entry_point_plugins",
    "load_env_plugins",
    "load_plugin",
    "load_plugins",
    "loaded_plugins",
]

ENV_VAR = "RLCF_PLUGINS"
ENTRY_POINT_GROUP = "rlcf.plugins"

_lock = threading.RLock()
_loaded: dict[str, str] = {}  # spec as recorded (module name or absolute .py path) -> module name
_entry_points_loaded = False


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _module_name_for(path: Path) -> str:
    """The module name of a plugin file: its stem plus a digest of its absolute path. Every process (a Ray
    worker importing it from ``RLCF_PLUGINS``) gives the file the same name, and it cannot shadow another module."""
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    return f"{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def load_plugin(spec: str, base: str | os.PathLike[str] | None = None) -> str:
    """Import one plugin: a module name (``my_pkg.rewards``) or a path to a ``.py`` file.

    Importing the same plugin again does nothing.

    Args:
        spec: the module name or file path.
        base: folder a relative file path is read from first (the experiment YAML's folder); then the
            current folder.

    Returns:
        The plugin as recorded in a resolved config: the module name, or the file's absolute path.

    Raises:
        UsageError: the file does not exist, or the module cannot be imported (with the import error).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"a plugin is a module name or a path to a .py file, got {spec!r}")
    spec = spec.strip()
    with _lock:
        if not _is_path(spec):
            if spec not in _loaded:
                try:
                    importlib.import_module(spec)
                except ImportError as exc:
                    local = Path(spec.replace(".", os.sep) + ".py")
                    fix = (f"pass the file instead: --plugin {local}" if local.is_file() else
                           "install its package in this environment, put its folder on PYTHONPATH, or pass the path "
                           "to its .py file")
                    raise UsageError(f"cannot import plugin module '{spec}': {exc}. To fix: {fix}") from exc
                except UsageError:
                    raise
                except Exception as exc:
                    raise UsageError(
                        f"plugin module '{spec}' failed while importing: {type(exc).__name__}: {exc}"
                    ) from exc
                _loaded[spec] = spec
                _export()
            return spec
        candidates = [Path(spec)] if Path(spec).is_absolute() else [*([Path(base) / spec] if base else []), Path(spec)]
        path = next((c.resolve() for c in candidates if c.is_file()), None)
        if path is None:
            tried = ", ".join(f"'{c}'" for c in candidates)
            raise UsageError(f"plugin file '{spec}' does not exist (looked for {tried})")
        key = str(path)
        if key in _loaded:
            return key
        name = _module_name_for(path)
        if name in sys.modules and Path(getattr(sys.modules[name], "__file__", "") or "").resolve() == path:
            _loaded[key] = name
            _export()
            return key
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"plugin file '{path}' cannot be imported as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        # Registered in sys.modules before it runs, so registry entries get a 'module:attr' path that resolves.
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, Exception) and not isinstance(exc, UsageError):
                raise UsageError(f"plugin file '{path}' failed while importing: {type(exc).__name__}: {exc}") from exc
            raise
        _loaded[key] = name
        _export()
        return key


def load_plugins(specs: Iterable[str], base: str | os.PathLike[str] | None = None) -> list[str]:
    """:func:`load_plugin` for each of ``specs``; returns the recorded forms, in order."""
    return [load_plugin(s, base) for s in specs]


def loaded_plugins() -> list[str]:
    """The plugins imported so far by :func:`load_plugin` (module names and absolute file paths)."""
    with _lock:
        return list(_loaded)


def _export() -> None:
    """Keep ``RLCF_PLUGINS`` in step, so child processes (Ray workers, jobs) import the same plugins."""
    os.environ[ENV_VAR] = os.pathsep.join(_loaded)


def load_env_plugins() -> None:
    """Import the plugins named in ``RLCF_PLUGINS`` (set by a parent process that loaded them); one that fails
    is reported with a warning and skipped."""
    for spec in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        if spec not in _loaded:
            try:
                load_plugin(spec)
            except Exception as exc:  # noqa: BLE001 - the lookup that follows says what is missing
                log.warning("plugin '%s' named in %s failed to import: %s", spec, ENV_VAR, exc)


def load_entry_point_plugins() -> None:
    """Import the modules of the ``rlcf.plugins`` entry-point group and of ``RLCF_PLUGINS``, once.

    A plugin that fails to import is reported with a warning and skipped, so one broken package cannot break
    every lookup.
    """
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        load_env_plugins()
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:  # noqa: BLE001
                dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
                log.warning("rlcf plugin '%s' (%s, from %s) failed to import: %s", ep.name, ep.value, dist, exc)
