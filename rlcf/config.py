"""Dataclass configs, YAML experiment files and ``key=value`` overrides.

Every algorithm has a config dataclass whose fields carry help text (``option(default, "help")``, which is
``dataclasses.field(metadata={"help": ...})``). An *experiment* is one YAML file::

    algo: cfcql                 # a name in rlcf.algos (or "package.module:Attr")
    run:                        # RunConfig: seed, device, step budget, logging and checkpoint cadence
      name: mpe_spread-medium
      seed: 0
    config:                     # the algorithm's own Config dataclass
      cql_alpha: 5.0

Command-line overrides layer on top: ``run.seed=3 config.cql_alpha=1.0``. Values are parsed as YAML
(``true``, ``1e-3``, ``[1, 2]``) and then checked against the field's annotated type. Unknown keys are errors,
never silently ignored, and every error names the dotted field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from rlcf.errors import ConfigError, UnknownNameError, UsageError

C = TypeVar("C")

__all__ = [
    "ExperimentConfig",
    "RunConfig",
    "apply_overrides",
    "config_help",
    "from_dict",
    "load_experiment",
    "load_yaml",
    "option",
    "parse_overrides",
    "require",
    "to_dict",
    "to_yaml",
]


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    default_factory: Any = dataclasses.MISSING,
    registry: str | None = None,
) -> Any:
    """A dataclass field with help text: ``lr: float = option(3e-4, "Adam learning rate.")``.

    ``registry="rewards"`` (or ``"envs"``, ``"policies"``, ...) marks a field whose value is a name (or a list
    of names) in that registry: :func:`load_experiment` checks them before any work starts. Fields named
    ``rewards``, ``env``, ``env_id``, ``policy`` or ``suite`` are checked without the mark.
    """
    if not help:
        raise TypeError("every config field needs help text")
    metadata: dict[str, Any] = {"help": help}
    if registry is not None:
        metadata["registry"] = registry
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def require(condition: bool, field: str, message: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``condition`` holds. For use in ``__post_init__``."""
    if not condition:
        raise ConfigError(field, message)


# -- dict -> dataclass -----------------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert the lossless cases (int→float, "1e6"→int)."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        allowed = " or ".join(_type_name(a) for a in args)
        raise ConfigError(path, f"expected {allowed}, got {value!r} ({type(value).__name__})")

    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        choices = ", ".join(repr(a) for a in args)
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(path, f"{value!r} is not one of the allowed values: {choices}.{hint}")

    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, path)

    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(path, f"{value!r} is not one of the allowed values: {choices}") from None

    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {value!r} ({type(value).__name__})")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(path, f"expected {len(args)} items, got {len(value)}: {value!r}")
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items

    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {value!r} ({type(value).__name__})")
        key_tp, val_tp = args if args else (Any, Any)
        return {_coerce(k, key_tp, path): _coerce(v, val_tp, _join(path, str(k))) for k, v in value.items()}

    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected true or false, got {value!r} ({type(value).__name__})")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # YAML reads "1e6" as a string and "1.0e6" as a float: accept either when the number is integral.
        number = _as_float(value)
        if number is not None and math.isfinite(number) and number == int(number):
            return int(number)
        raise ConfigError(path, f"expected an integer, got {value!r} ({type(value).__name__})")
    if tp is float:
        number = _as_float(value)
        if number is not None:
            return number
        raise ConfigError(path, f"expected a number, got {value!r} ({type(value).__name__})")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"expected a string, got {value!r} ({type(value).__name__}); quote it in YAML")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(path, f"expected a path, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(path, f"expected {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and (_FLOAT_RE.match(value.strip()) or value.strip().lower() in ("inf", "-inf", "+inf")):
        return float(value)
    return None


def from_dict(cls: type[C], data: Mapping[str, Any] | None, path: str = "") -> C:
    """Build the dataclass ``cls`` from a nested mapping, checking every key and type.

    Args:
        cls: a dataclass type.
        data: its fields; missing ones take their defaults.
        path: dotted prefix used in error messages (``"config"``).

    Keys in ``cls.RETIRED`` (a ``ClassVar[frozenset[str]]``: fields older versions wrote that never had an effect
    on this class) are dropped with a warning, so configs saved beside old runs still load.

    Raises:
        ConfigError: an unknown key (with the valid keys and the closest match), a missing required field,
            a value of the wrong type, or a check in ``__post_init__`` that failed.
    """
    data = dict(data or {})
    retired = sorted(k for k in data if k in getattr(cls, "RETIRED", ()))
    if retired:
        warnings.warn(f"{cls.__name__} ignores {', '.join(_join(path, k) for k in retired)} (no effect on this algorithm)", stacklevel=2)
        data = {k: v for k, v in data.items() if k not in retired}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" Did you mean '{_join(path, close[0])}'?" if close else ""
        where = f"under '{path}'" if path else "at the top level"
        raise ConfigError(
            _join(path, str(key)),
            f"unknown key for {cls.__name__}.{hint} Valid keys {where}: {', '.join(fields)}",
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(_over_default(f, data[name]), hints.get(name, Any), _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(path, name), f"is required ({_field_help(f)})")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if path and not exc.field.startswith(path + "."):
            raise ConfigError(_join(path, exc.field), exc.message) from None
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(path or cls.__name__, str(exc)) from None


def _over_default(f: dataclasses.Field, value: Any) -> Any:
    """A partial mapping for a nested config fills in from the field's own default, not the class defaults: with
    ``tiny: TinyLMConfig = field(default_factory=lambda: TinyLMConfig(prefix_space=True))``, the override
    ``tiny.layers=4`` keeps ``prefix_space=True``."""
    if not isinstance(value, Mapping) or f.default_factory is dataclasses.MISSING:
        return value
    default = f.default_factory()
    if not dataclasses.is_dataclass(default) or isinstance(default, type):
        return value
    return {**{g.name: getattr(default, g.name) for g in dataclasses.fields(default) if g.init}, **value}


def _field_help(f: dataclasses.Field) -> str:
    return str(f.metadata.get("help", "")) if f.metadata else ""


def to_dict(obj: Any) -> Any:
    """A dataclass (or nested containers of them) as plain YAML/JSON-safe Python data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def to_yaml(obj: Any) -> str:
    """YAML text of a config (fields in declaration order)."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)


def config_help(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, Any, str]]:
    """``(dotted name, type, default, help)`` for every field of a config dataclass, nested ones flattened.

    ``defaults`` (an instance of ``cls``) supplies the defaults of a nested config whose parent field builds it with
    its own values (e.g. DNA-Train's ``tiny`` with ``prefix_space=True``), so the table shows what a run gets."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, Any)
        name = _join(prefix, f.name)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            nested = getattr(defaults, f.name, None) if defaults is not None else None
            if nested is None and f.default_factory is not dataclasses.MISSING:
                nested = f.default_factory()
            elif nested is None and f.default is not dataclasses.MISSING:
                nested = f.default
            rows.extend(config_help(tp, name, nested))
            continue
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        rows.append((name, _type_name(tp), to_dict(default), _field_help(f)))
    return rows


# -- YAML and overrides ------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but reading ``1e-3`` and ``1e6`` as numbers (YAML 1.2), as users expect."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping document is a :class:`UsageError`, a syntax error
    a :class:`ConfigError` naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file '{p}' does not exist")
    try:
        data = _yaml_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise ConfigError(
            "", f"{where}: not valid YAML ({detail}). Fix that line (check its indentation, colons and quotes)"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file '{p}' must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Sequence[str]) -> list[tuple[list[str], Any]]:
    """Parse ``["a.b=1", "c=[1, 2]"]`` into ``[(["a", "b"], 1), (["c"], [1, 2])]``."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise UsageError(f"override '{item}' must look like key=value or section.key=value")
        try:
            value = _yaml_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw  # leave odd strings as they are; the field's type check decides
        parsed.append((key.split("."), value))
    return parsed


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A deep copy of ``data`` with ``key=value`` overrides applied (unknown keys are caught by ``from_dict``)."""
    out = _deep_copy(data)
    for keys, value in parse_overrides(overrides):
        node = out
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                raise ConfigError(".".join(keys[: i + 1]), f"is a value, not a section; cannot set '{'.'.join(keys)}'")
            node = child
        node[keys[-1]] = value
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


# -- experiments -------------------------------------------------------------------------------------------------

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


@dataclasses.dataclass
class RunConfig:
    """Settings of one training run that every algorithm shares."""

    name: str = option("", "Run name; the run folder is <out_dir>/<algo>/<name>-<timestamp>. Empty: the config file's stem, else the algorithm name.")
    seed: int = option(0, "Seed for Python, NumPy and torch random number generators.")
    device: str = option("auto", "'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    out_dir: str = option("runs", "Root folder for run folders.")
    total_steps: int = option(1000, "Gradient steps to train for.")
    log_every: int = option(100, "Write train/ and losses/ metrics every this many steps.")
    eval_every: int = option(0, "Evaluate every this many steps; 0 evaluates only at the end.")
    checkpoint_every: int = option(1000, "Save a checkpoint every this many steps (and always at the end).")
    keep_checkpoints: int = option(3, "How many most recent checkpoints to keep on disk.")
    tensorboard: bool = option(True, "Also write metrics as TensorBoard event files under <run>/tb.")
    num_gpus: int = option(0, "Data-parallel training on this many GPUs (Ray Train workers for step algorithms); 0: one process.")
    num_workers: int = option(0, "Without num_gpus: data-parallel training on this many CPU workers of 1 CPU each (Ray Train); 0: one process.")
    threads: int = option(0, "torch CPU threads of each training process; 0: its CPU share (OMP_NUM_THREADS if set, inside Ray the CPUs Ray assigned, else the CPUs the process may run on).")

    # Fields that may change when a run is resumed (extending a run, changing cadence or hardware).
    RESUMABLE: typing.ClassVar[frozenset[str]] = frozenset(
        {"total_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "device", "tensorboard",
         "num_gpus", "num_workers", "threads"}
    )

    def __post_init__(self) -> None:
        require(bool(_DEVICE_RE.match(self.device)), "device", f"{self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        require(self.total_steps > 0, "total_steps", f"must be > 0, got {self.total_steps}")
        require(self.log_every > 0, "log_every", f"must be > 0, got {self.log_every}")
        require(self.eval_every >= 0, "eval_every", f"must be >= 0 (0 = only at the end), got {self.eval_every}")
        require(self.checkpoint_every > 0, "checkpoint_every", f"must be > 0, got {self.checkpoint_every}")
        require(self.num_gpus >= 0, "num_gpus", f"must be >= 0, got {self.num_gpus}")
        require(self.num_workers >= 0, "num_workers", f"must be >= 0, got {self.num_workers}")
        require(self.threads >= 0, "threads", f"must be >= 0 (0: the process's CPU share), got {self.threads}")
        require(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")
        require("/" not in self.name and self.name not in (".", ".."), "name", f"{self.name!r} must not contain '/'")


@dataclasses.dataclass
class ExperimentConfig:
    """A complete experiment: which algorithm, its hyperparameters and the run settings."""

    algo: str = option(help="Algorithm name in rlcf.algos, or a 'package.module:Class' path.")
    config: Any = option(help="The algorithm's Config dataclass.")
    run: RunConfig = option(default_factory=RunConfig, help="Run settings shared by all algorithms.")
    plugins: list[str] = option(
        default_factory=list,
        help="Modules or .py files imported before the config is checked (they register your rewards, envs, "
        "policies, algorithms). A relative .py path is read from the YAML file's folder.",
    )


_EXPERIMENT_KEYS = ("algo", "run", "config", "plugins")

# Config fields named like this hold registry names, checked before any work starts (``option(registry=...)``
# marks fields with other names).
_REGISTRY_FIELDS = {"rewards": "rewards", "env": "envs", "env_id": "envs", "policy": "policies", "suite": "suites"}


def check_registry_names(config: Any, path: str = "config") -> None:
    """Check that every registry name in ``config`` (a dataclass, nested ones included) is registered.

    Raises:
        ConfigError: naming the field, the unknown name, the valid names, and how to load a plugin.
    """
    from rlcf.registry import get_registry

    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        field = _join(path, f.name)
        kind = (f.metadata or {}).get("registry") or _REGISTRY_FIELDS.get(f.name)
        if kind is None:
            check_registry_names(value, field)
            continue
        names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
        registry = get_registry(kind)
        for name in names:
            if not isinstance(name, str) or not name:
                continue
            try:
                if ":" in name or registry.entry(name) is None:
                    registry.get(name)  # imports a path; raises UnknownNameError listing the valid names
            except UnknownNameError as exc:
                raise UnknownNameError(f"config field '{field}': {exc}") from None
            except UsageError as exc:
                raise ConfigError(field, str(exc)) from None


def _plugin_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError("plugins", f"expected a list of module names or .py paths, got {value!r}")


def _key_hint(key: str, algo_cls: Any) -> str:
    """Where a misplaced top-level key most likely belongs: ``seed`` → ``run.seed``, ``lr`` → ``config.lr``."""
    candidates = [f"run.{f.name}" for f in dataclasses.fields(RunConfig)]
    if algo_cls is not None:
        candidates += [f"config.{f.name}" for f in dataclasses.fields(algo_cls.Config)]
    exact = [c for c in candidates if c.split(".", 1)[1] == key]
    if exact:
        return exact[0]
    close = difflib.get_close_matches(key, [c.split(".", 1)[1] for c in candidates], n=1)
    return next(c for c in candidates if c.split(".", 1)[1] == close[0]) if close else ""


def load_experiment(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    algo: str | None = None,
    plugins: Sequence[str] = (),
) -> ExperimentConfig:
    """Resolve an experiment from a YAML file (or mapping), an algorithm name, and overrides.

    Args:
        source: path to a YAML experiment, a mapping with the same keys, or ``None`` for defaults only.
        overrides: ``key=value`` strings applied on top (``run.seed=1``, ``config.lr=3e-4``).
        algo: the algorithm, when ``source`` does not name one (``rlcf train cfcql run.seed=1``).
        plugins: more plugins (``rlcf --plugin``) to import and record, after the file's own ``plugins``.

    The experiment's plugins are imported first; then every field is checked, registry names included
    (reward functions, envs, policies), so a typo fails here and not after minutes of work.

    Raises:
        ConfigError / UnknownNameError: with the field or name at fault.
    """
    from rlcf.plugins import load_plugins
    from rlcf.registry import algos

    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = _deep_copy(source)
    else:
        data = load_yaml(source)
    if algo is not None:
        if data.get("algo") not in (None, algo):
            raise ConfigError("algo", f"the file names {data['algo']!r} but {algo!r} was asked for")
        data["algo"] = algo
    data = apply_overrides(data, overrides)
    base = Path(source).parent if isinstance(source, (str, Path)) else None
    loaded = load_plugins(_plugin_list(data.get("plugins")), base=base)
    loaded += [p for p in load_plugins(plugins) if p not in loaded]
    name = data.get("algo")
    unknown = [k for k in data if k not in _EXPERIMENT_KEYS]
    if unknown:
        key = str(unknown[0])
        algo_cls = algos.get(name) if isinstance(name, str) and name in algos else None
        guess = _key_hint(key, algo_cls) if not isinstance(data.get(key), Mapping) else ""
        hint = f" Did you mean '{guess}'?" if guess else ""
        raise ConfigError(key, f"unknown top-level key.{hint} An experiment has only: {', '.join(_EXPERIMENT_KEYS)}")
    if not isinstance(name, str) or not name:
        raise ConfigError("algo", "is required: the name of an algorithm in rlcf.algos (see `rlcf list algos`)")
    algo_cls = algos.get(name)
    config = from_dict(algo_cls.Config, data.get("config"), "config")
    check_registry_names(config, "config")
    run = from_dict(RunConfig, data.get("run"), "run")
    if not run.name:
        stem = Path(source).stem if isinstance(source, (str, Path)) else ""
        run = dataclasses.replace(run, name=stem or name.rsplit(":", 1)[-1].lower())
    return ExperimentConfig(algo=name, config=config, run=run, plugins=loaded)
