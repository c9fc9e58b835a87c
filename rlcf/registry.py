"""One registry mechanism for everything users extend: envs, suites, behaviour policies, reward functions,
algorithms, LLM tasks and ``rlcf`` subcommands.

Three ways to put an object in a registry, all equivalent once registered:

1. a decorator in the module that defines it::

       @rlcf.registry.rewards.register("my_reward")
       def my_reward(completions, **kwargs): ...

2. a ``"package.module:attr"`` path, registered now and imported on first use::

       rlcf.registry.rewards.register("my_reward", "my_pkg.rewards:my_reward")

   (any lookup also accepts such a path directly, without registering it);

3. a Python entry point in the group of the registry (``rlcf.envs``, ``rlcf.suites``, ``rlcf.policies``,
   ``rlcf.reward_fns``, ``rlcf.algos``, ``rlcf.tasks``, ``rlcf.commands``), declared by a third-party package::

       [project.entry-points."rlcf.reward_fns"]
       my_reward = "my_pkg.rewards:my_reward"

   Entry points are read the first time a lookup misses or a listing is asked for, and their targets are
   imported only when used, so a broken plugin cannot break ``import rlcf``.

Registering the same object twice is harmless: Ray workers and ``importlib.reload`` re-import modules, which
re-runs their decorators and makes new function objects with the same module and qualified name. Registering
a *different* object under a taken name raises :class:`~rlcf.errors.RegistrationError`. Looking up an unknown
name raises :class:`~rlcf.errors.UnknownNameError`, listing the valid names and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from rlcf.errors import RegistrationError, UnknownNameError, UsageError

T = TypeVar("T")

__all__ = [
    "Registry",
    "RegistryEntry",
    "algos",
    "commands",
    "envs",
    "get_registry",
    "policies",
    "registries",
    "resolve_path",
    "rewards",
    "suites",
    "tasks",
]


def resolve_path(path: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the attribute.

    Raises:
        UsageError: the path is malformed, the module cannot be imported, or it has no such attribute.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"'{path}' is not an import path; write it as 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A plugin file the parent process loaded (a Ray worker's registry path): import RLCF_PLUGINS, retry.
        from rlcf.plugins import load_env_plugins

        load_env_plugins()
        if module_name not in sys.modules:
            raise UsageError(
                f"cannot import module '{module_name}' named by '{path}': {exc}. "
                "Check the spelling and that the package is installed in this environment "
                "(or load the file that defines it with --plugin)."
            ) from exc
        obj = sys.modules[module_name]
    except ImportError as exc:
        raise UsageError(
            f"cannot import module '{module_name}' named by '{path}': {exc}. "
            "Check the spelling and that the package is installed in this environment."
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module '{module_name}' has no attribute '{attr}' (from '{path}')") from None
    return obj


def _qualified_name(obj: Any) -> str | None:
    """``module:qualname`` of a function or class defined at module level, else ``None``."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        return None
    return f"{module}:{qualname}"


def _same_object(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are one object, or the same definition re-imported."""
    if a is b:
        return True
    qa, qb = _qualified_name(a), _qualified_name(b)
    if qa is not None:
        return qa == qb and type(a) is type(b)
    # Instances of value types (an EnvSpec, a Suite) made again by a re-imported module: same class name and
    # same field values.
    import dataclasses

    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and not isinstance(a, type):
        same_class = _qualified_name(type(a)) == _qualified_name(type(b))
        return same_class and dataclasses.asdict(a) == dataclasses.asdict(b)
    return False


@dataclass
class RegistryEntry:
    """One registered name.

    Attributes:
        name: the registered name.
        obj: the object, or ``None`` while only its import path is known.
        path: the ``"package.module:attr"`` the object is (or will be) imported from, if known.
        source: how it was registered: ``"decorator"``, ``"code"`` (a call with the object), ``"path"`` or ``"entry point (<dist>)"``.
        metadata: free-form keyword data given at registration (e.g. ``help``).
    """

    name: str
    obj: Any = None
    path: str | None = None
    source: str = "decorator"
    metadata: dict[str, Any] = field(default_factory=dict)
    conflict: str | None = None  # set when an entry point collides with an existing, different object

    @property
    def loaded(self) -> bool:
        return self.obj is not None

    def summary(self) -> str:
        """One line describing the entry, without importing it."""
        if self.metadata.get("help"):
            return str(self.metadata["help"])
        doc = getattr(self.obj, "__doc__", None) if self.obj is not None else None
        if doc and self.obj.__doc__ is not type(self.obj).__doc__:
            return doc.strip().splitlines()[0]
        return "" if self.loaded else f"(not imported yet: {self.path})"


class Registry(Generic[T]):
    """A name → object table for one kind of plugin.

    Args:
        kind: plural name used by ``rlcf list`` (``"envs"``, ``"rewards"``, ...).
        noun: what one entry is called in messages (``"env"``, ``"reward function"``).
        group: the entry-point group read for third-party plugins.
        builtin_modules: modules whose import registers rlcf's own entries (imported on first lookup).
        check: called with ``(name, obj)`` when an object is registered or first imported; raises
            :class:`UsageError` when the object does not fit the registry's protocol.
    """

    def __init__(
        self,
        kind: str,
        noun: str,
        group: str,
        builtin_modules: Sequence[str] = (),
        check: Callable[[str, Any], None] | None = None,
    ):
        self.kind = kind
        self.noun = noun
        self.group = group
        self.builtin_modules = tuple(builtin_modules)
        self._check = check
        self._entries: dict[str, RegistryEntry] = {}
        self._lock = threading.RLock()
        self._builtins_loaded = False
        self._entry_points_loaded = False

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, group={self.group!r}, registered={len(self._entries)})"

    # -- registration ---------------------------------------------------------------------------------------

    @overload
    def register(self, name: Callable[..., Any], obj: None = None, **metadata: Any) -> Any: ...
    @overload
    def register(self, name: str | None = None, obj: Any = None, **metadata: Any) -> Any: ...

    def register(self, name=None, obj=None, **metadata):
        """Register ``obj`` under ``name``; usable as ``@reg.register``, ``@reg.register("n")`` or a call.

        Args:
            name: the name; defaults to the object's ``__name__`` when used as a bare decorator.
            obj: the object, or a ``"package.module:attr"`` string imported on first use.
            **metadata: stored with the entry (``help="..."`` shows in ``rlcf list``).

        Returns:
            The object (so the decorator leaves the definition unchanged).

        Raises:
            RegistrationError: a different object is already registered under ``name``.
        """
        if callable(name) and obj is None and not isinstance(name, str):
            # bare decorator: @reg.register
            return self._register(getattr(name, "__name__"), name, "decorator", metadata)
        if obj is None:

            def decorator(target):
                return self._register(name or getattr(target, "__name__"), target, "decorator", metadata)

            return decorator
        if isinstance(obj, str):
            return self._register(name, None, "path", metadata, path=obj)
        return self._register(name, obj, "code", metadata)

    def _register(self, name, obj, source, metadata, path=None):
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"a {self.noun} name must be a non-empty string, got {name!r}")
        if ":" in name:
            raise UsageError(
                f"{self.noun} name '{name}' contains ':', which is reserved for 'package.module:attr' paths"
            )
        if path is not None and ":" not in path:
            raise UsageError(f"'{path}' is not an import path; write it as 'package.module:attribute'")
        if obj is not None and self._check is not None:
            self._check(name, obj)
        with self._lock:
            existing = self._entries.get(name)
            if existing is not None:
                self._reconcile(existing, obj, path, source)
                return obj
            qualified = _qualified_name(obj) if obj is not None else None
            self._entries[name] = RegistryEntry(
                name=name, obj=obj, path=path or qualified, source=source, metadata=dict(metadata)
            )
        return obj

    def _reconcile(self, existing: RegistryEntry, obj: Any, path: str | None, source: str) -> None:
        """Accept a repeated registration of the same object; refuse a different one."""
        if obj is not None and existing.obj is not None:
            if _same_object(existing.obj, obj):
                existing.obj = obj  # a re-import: keep the newest definition
                return
        elif path is not None and existing.path == path:
            return
        elif obj is not None and existing.path is not None and _qualified_name(obj) == existing.path:
            existing.obj = obj
            return
        else:
            # Compare the imported objects when only paths are known on one side.
            mine = self._load(existing)
            other = obj if obj is not None else resolve_path(path)  # type: ignore[arg-type]
            if _same_object(mine, other):
                return
        where = existing.path or repr(existing.obj)
        new = path or _qualified_name(obj) or repr(obj)
        raise RegistrationError(
            f"{self.noun} name '{existing.name}' is already registered to {where} ({existing.source}); "
            f"refusing to register a different object {new} ({source}) under it. "
            f"Pick another name, or call rlcf.registry.{self.kind}.unregister('{existing.name}') first "
            "if the replacement is intended."
        )

    def unregister(self, name: str) -> None:
        """Remove ``name``. Raises :class:`UnknownNameError` when it is not registered."""
        with self._lock:
            if name not in self._entries:
                raise self._unknown(name)
            del self._entries[name]

    # -- lookup ---------------------------------------------------------------------------------------------

    def get(self, name: str) -> T:
        """The object registered under ``name`` (imported now if needed).

        ``name`` may also be a ``"package.module:attr"`` path, resolved without registering it.

        Raises:
            UnknownNameError: nothing is registered under ``name``; the message lists the valid names.
            RegistrationError: a plugin's entry point collides with a different object of the same name.
        """
        entry = self.entry(name)
        if entry is None:
            if ":" in name:
                obj = resolve_path(name)
                if self._check is not None:
                    self._check(name, obj)
                return obj
            raise self._unknown(name)
        if entry.conflict:
            raise RegistrationError(entry.conflict)
        return self._load(entry)

    def entry(self, name: str) -> RegistryEntry | None:
        """The entry for ``name`` without importing its object, loading built-ins and plugins if needed."""
        with self._lock:
            if name in self._entries:
                return self._entries[name]
            self._load_builtins()
            if name in self._entries:
                return self._entries[name]
            self._load_entry_points()
            return self._entries.get(name)

    def _load(self, entry: RegistryEntry) -> Any:
        if entry.obj is None:
            assert entry.path is not None
            obj = resolve_path(entry.path)
            if self._check is not None:
                self._check(entry.name, obj)
            entry.obj = obj
        return entry.obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.entry(name) is not None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def names(self) -> list[str]:
        """All registered names, sorted (built-ins and entry points included; nothing is imported)."""
        with self._lock:
            self._load_builtins()
            self._load_entry_points()
            return sorted(self._entries)

    def entries(self) -> list[RegistryEntry]:
        """All entries, sorted by name."""
        names = self.names()
        return [self._entries[n] for n in names]

    def _unknown(self, name: str) -> UnknownNameError:
        valid = self.names()
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listing = ", ".join(valid) if valid else "(none registered yet)"
        return UnknownNameError(
            f"unknown {self.noun} '{name}'.{hint} Valid {self.kind}: {listing}. "
            f"If it is defined in your own module, load that module: 'rlcf --plugin MODULE_OR_FILE.py ...' or "
            f"'plugins: [MODULE_OR_FILE.py]' in the experiment YAML (it registers with "
            f"@rlcf.registry.{self.kind}.register); a 'package.module:attr' path or an entry point in the "
            f"'{self.group}' group also work."
        )

    # -- discovery ------------------------------------------------------------------------------------------

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # set first: the imported modules call register() on this registry
        for module in self.builtin_modules:
            importlib.import_module(module)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        from rlcf.plugins import load_entry_point_plugins

        load_entry_point_plugins()  # modules of the 'rlcf.plugins' group register their objects when imported

        for ep in entry_points(group=self.group):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
            source = f"entry point ({dist})"
            existing = self._entries.get(ep.name)
            if existing is None:
                self._entries[ep.name] = RegistryEntry(name=ep.name, path=ep.value, source=source)
            elif existing.path != ep.value:
                # Do not break every lookup for one bad plugin: only this name becomes unusable.
                existing.conflict = (
                    f"{self.noun} name '{ep.name}' is provided both by {existing.path} ({existing.source}) "
                    f"and by {ep.value} ({source}). Uninstall one of them or rename the plugin's entry point."
                )

    def reload_entry_points(self) -> None:
        """Read the entry points again (after installing a plugin in a running process)."""
        with self._lock:
            self._entry_points_loaded = False
            self._load_entry_points()


# -- protocol checks for the built-in registries --------------------------------------------------------------


def _check_callable(kind: str) -> Callable[[str, Any], None]:
    def check(name: str, obj: Any) -> None:
        if not callable(obj):
            raise UsageError(f"{kind} '{name}' must be callable, got {type(obj).__name__}")

    return check


def _check_algorithm(name: str, obj: Any) -> None:
    import dataclasses

    config_cls = getattr(obj, "Config", None)
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise UsageError(
            f"algorithm '{name}' needs a 'Config' dataclass attribute (the algorithm's hyperparameters); "
            "subclass rlcf.algorithm.Algorithm"
        )
    if not callable(getattr(obj, "fit", None)):
        raise UsageError(f"algorithm '{name}' needs a 'fit(config, run)' method; subclass rlcf.algorithm.Algorithm")


def _check_command(name: str, obj: Any) -> None:
    if not (callable(getattr(obj, "add_parser", None)) and callable(getattr(obj, "run", None))):
        raise UsageError(
            f"command '{name}' needs 'add_parser(subparsers)' and 'run(args) -> int'; use rlcf.cli_parts.CliCommand"
        )


envs: Registry[Any] = Registry("envs", "env", "rlcf.envs", builtin_modules=["rlcf.envs"], check=_check_callable("env"))
suites: Registry[Any] = Registry("suites", "suite", "rlcf.suites", builtin_modules=["rlcf.envs"])
policies: Registry[Any] = Registry(
    "policies", "behaviour policy", "rlcf.policies", builtin_modules=["rlcf.envs"], check=_check_callable("policy")
)
rewards: Registry[Any] = Registry(
    "rewards", "reward function", "rlcf.reward_fns", builtin_modules=["rlcf.reward_fns"], check=_check_callable("reward function")
)
algos: Registry[Any] = Registry("algos", "algorithm", "rlcf.algos", builtin_modules=["rlcf.algos"], check=_check_algorithm)
#: Embedded LLM tasks: ``fn(split, count, seed=0) -> rows`` (each row a ``prompt`` plus its reward columns), as envs
#: are for the multi-agent side; rollouts and evaluation find a task here by name and import no task module.
tasks: Registry[Any] = Registry(
    "tasks", "LLM task", "rlcf.tasks", builtin_modules=["rlcf.envs.text"], check=_check_callable("task"),
)
#: Subcommands plug-ins add to ``rlcf`` (:class:`rlcf.cli_parts.CliCommand`: ``add_parser(subparsers)`` and
#: ``run(args)``); the command line builds them from here and names no plug-in module (rlcf's own
#: ``train-behaviour`` comes from :mod:`rlcf.envs`).
commands: Registry[Any] = Registry("commands", "command", "rlcf.commands", builtin_modules=["rlcf.envs"], check=_check_command)

registries: dict[str, Registry[Any]] = {r.kind: r for r in (envs, suites, policies, rewards, algos, tasks, commands)}


def get_registry(kind: str) -> Registry[Any]:
    """The registry for ``kind`` (``"envs"``, ``"suites"``, ``"policies"``, ``"rewards"``, ``"algos"``, ``"tasks"``,
    ``"commands"``)."""
    try:
        return registries[kind]
    except KeyError:
        raise UnknownNameError(
            f"unknown registry '{kind}'. Valid registries: {', '.join(registries)}"
        ) from None
