"""Configs: dataclass fields with help, YAML experiments, key=value overrides, errors that name the field."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import pytest
import yaml

import rlcf
from rlcf.config import (
    ExperimentConfig,
    RunConfig,
    config_help,
    from_dict,
    load_experiment,
    option,
    parse_overrides,
    require,
    to_dict,
    to_yaml,
)
from rlcf.errors import ConfigError, UnknownNameError, UsageError


@dataclasses.dataclass
class Inner:
    width: int = option(64, "Hidden width.")
    act: Literal["relu", "tanh"] = option("relu", "Activation.")


@dataclasses.dataclass
class Outer:
    lr: float = option(1e-3, "Learning rate.")
    steps: int = option(10, "Steps.")
    use_bn: bool = option(False, "BatchNorm.")
    tag: Optional[str] = option(None, "Optional tag.")
    sizes: list[int] = option(default_factory=lambda: [1, 2], help="Sizes.")
    pair: tuple[float, float] = option((0.0, 1.0), "A pair.")
    adv_norm: Literal["group", "pair_l1", "none"] = option("group", "Advantage normalization.")
    net: Inner = option(default_factory=Inner, help="Network.")

    def __post_init__(self):
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")


def test_option_requires_help():
    with pytest.raises(TypeError, match="help"):
        option(1)


def test_from_dict_coerces_lossless_cases():
    cfg = from_dict(Outer, {"lr": 1, "steps": "1e3", "sizes": [3], "pair": [1, 2], "net": {"width": 8.0}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)  # YAML reads 1e3 as a string
    assert cfg.pair == (1.0, 2.0) and cfg.net.width == 8 and cfg.net.act == "relu"


@pytest.mark.parametrize(
    "data, field, fragment",
    [
        ({"steps": 1.5}, "steps", "expected an integer, got 1.5"),
        ({"steps": True}, "steps", "expected an integer"),
        ({"use_bn": "yes please"}, "use_bn", "expected true or false"),
        ({"lr": "fast"}, "lr", "expected a number, got 'fast'"),
        ({"adv_norm": "pair-l1"}, "adv_norm", "allowed values: 'group', 'pair_l1', 'none'. Did you mean 'pair_l1'?"),
        ({"net": {"act": "gelu"}}, "net.act", "'gelu' is not one of the allowed values"),
        ({"sizes": "3"}, "sizes", "expected a list"),
        ({"sizes": [1, "x"]}, "sizes[1]", "expected an integer"),
        ({"pair": [1]}, "pair", "expected 2 items"),
        ({"tag": 5}, "tag", "expected str or null"),
        ({"lr": -1}, "lr", "must be > 0, got -1.0"),
        ({"lrr": 1}, "lrr", "unknown key for Outer. Did you mean 'lrr'"),
        ({"net": {"widht": 3}}, "net.widht", "Did you mean 'net.width'?"),
    ],
)
def test_errors_name_the_field_the_value_and_what_is_allowed(data, field, fragment):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, data)
    assert info.value.field == field
    msg = str(info.value)
    assert msg.startswith(f"config field '{field}'")
    if "Did you mean 'lrr'" in fragment:  # the suggestion names the real field
        assert "Did you mean 'lr'?" in msg and "Valid keys at the top level: lr, steps" in msg
    else:
        assert fragment in msg


def test_nested_post_init_error_is_prefixed_with_the_path():
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentConfigHolder, {"inner": {"lr": 0}})
    assert info.value.field == "inner.lr"


@dataclasses.dataclass
class ExperimentConfigHolder:
    inner: Outer = option(default_factory=Outer, help="x")


def test_required_fields_are_reported():
    @dataclasses.dataclass
    class Needs:
        dataset: str = option(help="Dataset id.")

    with pytest.raises(ConfigError, match="'dataset': is required \\(Dataset id.\\)"):
        from_dict(Needs, {})


def test_overrides_parse_yaml_values():
    assert parse_overrides(["a=1", "b.c=1e-3", "d=[1, 2]", "e=true", "f=hello", "g="]) == [
        (["a"], 1),
        (["b", "c"], 1e-3),
        (["d"], [1, 2]),
        (["e"], True),
        (["f"], "hello"),
        (["g"], ""),
    ]
    for bad in ("noequals", "=3", "a..b=1"):
        with pytest.raises(UsageError, match="key=value"):
            parse_overrides([bad])


def test_roundtrip_to_yaml_and_back():
    cfg = from_dict(Outer, {"lr": 0.5, "net": {"act": "tanh"}, "tag": "x"})
    again = from_dict(Outer, yaml.safe_load(to_yaml(cfg)))
    assert again == cfg
    rows = {name: (tp, default, help_) for name, tp, default, help_ in config_help(Outer)}
    assert rows["net.width"] == ("int", 64, "Hidden width.")
    assert all(help_ for _, _, help_ in rows.values()), "every field documents itself"


@pytest.fixture
def toy_algo():
    import toy_plugin

    rlcf.registry.algos.register("toy", toy_plugin.ToyRegression)
    yield "toy"
    rlcf.registry.algos.unregister("toy")


def test_load_experiment_layers_file_then_overrides(tmp_path, toy_algo):
    path = tmp_path / "toy-small.yaml"
    path.write_text("algo: toy\nrun:\n  seed: 3\n  total_steps: 50\nconfig:\n  lr: 0.1\n")
    exp = load_experiment(path, ["config.lr=0.2", "run.device=cpu", "config.optimizer=adam"])
    assert isinstance(exp, ExperimentConfig)
    assert exp.config.lr == 0.2 and exp.config.optimizer == "adam" and exp.config.batch_size == 16
    assert exp.run == RunConfig(name="toy-small", seed=3, device="cpu", total_steps=50)
    # Defaults alone, from the algorithm name; the run name falls back to the algorithm's.
    assert load_experiment(None, algo="toy").run.name == "toy"
    assert to_dict(load_experiment(path))["config"]["lr"] == 0.1


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        (["lr=0.1"], "lr", "unknown top-level key. Did you mean 'config.lr'?"),
        (["config.lrr=0.1"], "config.lrr", "Did you mean 'config.lr'?"),
        (["run.device=gpu"], "run.device", "'gpu' is not one of auto, cpu, cuda, cuda:N, mps"),
        (["run.total_steps=0"], "run.total_steps", "must be > 0"),
        (["config.batch_size=-1"], "config.batch_size", "must be > 0, got -1"),
        (["config.optimizer=lion"], "config.optimizer", "allowed values: 'sgd', 'adam'"),
        (["run.seed.x=1"], "run.seed", "expected an integer, got {'x': 1}"),
    ],
)
def test_experiment_errors(toy_algo, overrides, field, fragment):
    with pytest.raises(ConfigError) as info:
        load_experiment({"algo": "toy"}, overrides)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_experiment_with_unknown_algo_lists_the_registered_ones(toy_algo):
    with pytest.raises(UnknownNameError, match="unknown algorithm 'toyy'. Did you mean 'toy'?"):
        load_experiment({"algo": "toyy"})
    with pytest.raises(ConfigError, match="'algo': is required"):
        load_experiment({"run": {"seed": 1}})
    with pytest.raises(UsageError, match="does not exist"):
        load_experiment("/no/such/file.yaml")


def test_override_into_a_value_is_refused():
    from rlcf.config import apply_overrides

    with pytest.raises(ConfigError, match="'run.seed': is a value, not a section"):
        apply_overrides({"run": {"seed": 1}}, ["run.seed.x=1"])


@dataclasses.dataclass
class TanhHolder:
    net: Inner = option(default_factory=lambda: Inner(act="tanh"), help="A nested config whose default differs from Inner's.")


def test_partial_nested_override_keeps_the_fields_own_default():
    held = from_dict(TanhHolder, {"net": {"width": 8}})
    assert held.net == Inner(width=8, act="tanh")  # not Inner's class default 'relu'
    assert from_dict(TanhHolder, {}).net.act == "tanh"
    assert from_dict(TanhHolder, {"net": {"act": "relu"}}).net == Inner(act="relu")


def test_fields_table_shows_the_defaults_a_nested_config_gets_from_its_parent():
    """DNA-Train builds its tiny model config with prefix_space=True; `rlcf config --fields` showed the class
    default (False)."""
    from rlcf.algos.dna_train import DNATrainConfig
    from rlcf.config import config_help

    rows = {name: default for name, _, default, _ in config_help(DNATrainConfig, "config")}
    assert rows["config.tiny.prefix_space"] is True and rows["config.tiny.hidden_size"] == 128
