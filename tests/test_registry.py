"""The registry: three registration routes, idempotence under re-import, conflicts, and the error messages."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import rlcf
from rlcf.errors import RegistrationError, UnknownNameError, UsageError
from rlcf.registry import Registry


@pytest.fixture
def reg():
    return Registry("widgets", "widget", "rlcf.test_widgets")


def test_decorator_forms_register_and_return_the_object(reg):
    @reg.register
    def alpha():
        """Alpha does things."""

    @reg.register("beta", help="the beta widget")
    def b():
        pass

    def gamma():
        pass

    assert reg.register("gamma", gamma) is gamma
    assert reg.get("alpha") is alpha and reg["beta"] is b and reg.get("gamma") is gamma
    assert reg.names() == ["alpha", "beta", "gamma"]
    summaries = {e.name: e.summary() for e in reg.entries()}
    assert summaries["alpha"] == "Alpha does things." and summaries["beta"] == "the beta widget"
    assert "alpha" in reg and "delta" not in reg


def test_path_registration_is_lazy(reg):
    sys.modules.pop("entry_point_rewards", None)
    reg.register("exclaim", "entry_point_rewards:exclaim_reward")
    assert "entry_point_rewards" not in sys.modules, "registering a path must not import it"
    assert not reg.entry("exclaim").loaded
    fn = reg.get("exclaim")
    assert fn(["hi!", "hi"]) == [1.0, 0.0]
    assert sys.modules["entry_point_rewards"].exclaim_reward is fn


def test_a_path_resolves_without_registration(reg):
    fn = reg.get("entry_point_rewards:exclaim_reward")
    assert fn(["!"]) == [1.0]
    assert "entry_point_rewards:exclaim_reward" not in reg.names()


def test_bad_paths_name_the_problem(reg):
    with pytest.raises(UsageError, match="cannot import module 'no_such_module_xyz'"):
        reg.get("no_such_module_xyz:f")
    with pytest.raises(UsageError, match="has no attribute 'nope'"):
        reg.get("entry_point_rewards:nope")
    with pytest.raises(UsageError, match="reserved for 'package.module:attr'"):
        reg.register("a:b", lambda: None)


def test_same_object_twice_is_harmless_and_different_object_is_refused(reg):
    def f():
        pass

    reg.register("f", f)
    reg.register("f", f)  # harmless
    reg.register("p", "entry_point_rewards:exclaim_reward")
    reg.register("p", "entry_point_rewards:exclaim_reward")  # the same path again
    importlib.import_module("entry_point_rewards")
    reg.register("p", sys.modules["entry_point_rewards"].exclaim_reward)  # the object behind the path

    def g():
        pass

    with pytest.raises(RegistrationError, match=r"widget name 'f' is already registered .* refusing"):
        reg.register("f", g)
    with pytest.raises(RegistrationError, match="already registered"):
        reg.register("p", f)
    assert reg.get("f") is f


def test_reimporting_a_module_re_registers_without_error():
    """Ray workers and importlib.reload re-run decorators; that must not be a conflict."""
    module = importlib.import_module("registering_module")
    first = rlcf.registry.rewards.get("test_length_reward")
    reloaded = importlib.reload(module)
    second = rlcf.registry.rewards.get("test_length_reward")
    assert second is reloaded.length_reward and second is not first  # the newest definition wins
    assert second(["ab", "abcd"]) == [-0.02, -0.04]


def test_unknown_name_lists_valid_names_and_suggests(reg):
    reg.register("simple_spread", lambda: None)
    reg.register("simple_tag", lambda: None)
    with pytest.raises(UnknownNameError) as info:
        reg.get("simple_sprad")
    msg = str(info.value)
    assert "unknown widget 'simple_sprad'" in msg
    assert "Did you mean 'simple_spread'?" in msg
    assert "simple_spread, simple_tag" in msg
    assert "rlcf.test_widgets" in msg  # says how to add one
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzz")
    assert "Did you mean" not in str(info.value)


def test_unregister(reg):
    reg.register("x", lambda: None)
    reg.unregister("x")
    with pytest.raises(UnknownNameError):
        reg.unregister("x")


def test_protocol_checks_reject_wrong_objects():
    with pytest.raises(UsageError, match="must be callable"):
        rlcf.registry.rewards.register("not_callable_reward", 3)
    with pytest.raises(UsageError, match="needs a 'Config' dataclass"):
        rlcf.registry.algos.register("not_an_algo", object)


def _write_dist(tmp_path, group: str, lines: str, name: str = "rlcf_test_plugin") -> None:
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{textwrap.dedent(lines)}")


def test_entry_points_are_discovered_lazily(tmp_path, monkeypatch):
    """A third-party package's entry point, installed the way pip installs one (a .dist-info folder)."""
    _write_dist(tmp_path, "rlcf.test_widgets", "exclaim = entry_point_rewards:exclaim_reward\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("entry_point_rewards", None)
    reg = Registry("widgets", "widget", "rlcf.test_widgets")
    assert reg.names() == ["exclaim"]
    entry = reg.entry("exclaim")
    assert entry.source == "entry point (rlcf_test_plugin)" and not entry.loaded
    assert "entry_point_rewards" not in sys.modules, "listing must not import plugin code"
    assert reg.get("exclaim")(["yes!"]) == [1.0]


def test_entry_point_clashing_with_a_registered_name_fails_only_that_name(tmp_path, monkeypatch):
    _write_dist(tmp_path, "rlcf.test_widgets", "taken = entry_point_rewards:exclaim_reward\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widgets", "widget", "rlcf.test_widgets")

    def taken():
        pass

    def other():
        pass

    reg.register("taken", taken)
    reg.register("other", other)
    assert reg.names() == ["other", "taken"]
    assert reg.get("other") is other  # the rest of the registry keeps working
    with pytest.raises(RegistrationError, match="provided both by .* and by entry_point_rewards:exclaim_reward"):
        reg.get("taken")


def test_entry_point_plugin_visible_from_the_cli(tmp_path):
    """The whole route in a fresh interpreter: an installed entry point shows up in `rlcf list rewards`."""
    _write_dist(tmp_path, "rlcf.reward_fns", "exclaim = entry_point_rewards:exclaim_reward\n")
    from tests_support import plugin_pythonpath

    out = subprocess.run(
        [sys.executable, "-m", "rlcf.cli", "list", "rewards", "--json"],
        capture_output=True,
        text=True,
        env=plugin_pythonpath(tmp_path),
        check=True,
    ).stdout
    assert '"name": "exclaim"' in out and "entry point (rlcf_test_plugin)" in out


def test_import_rlcf_stays_light():
    """Heavy libraries load when used, never on `import rlcf` (the speed itself is in bench/bench_import.py)."""
    code = (
        "import sys, rlcf; rlcf.registry.algos; heavy = [m for m in ('torch', 'ray', 'trl', 'transformers', 'pettingzoo',"
        " 'minari', 'gymnasium', 'numpy', 'rich') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import rlcf loaded: {out}"


def test_llm_tasks_are_a_registry_the_rollouts_read():
    """Rollouts name no task module: they look tasks up in rlcf.registry.tasks, where a plug-in's task sits beside
    the built-in ones."""
    from rlcf.registry import tasks
    from rlcf.runtime.rollouts import prompt_rows

    assert {"grounded_qa", "grounded_pairs"} <= set(tasks.names())

    @tasks.register("echo_task_for_test", help="two prompts")
    def echo(split, count, seed=0):
        return [{"prompt": f"{split} {i}", "solution": str(i)} for i in range(count)]

    try:
        rows = prompt_rows("echo_task_for_test", docs=2, split="train")
        assert [(r["prompt_id"], r["prompt"]) for r in rows] == [(0, "train 0"), (1, "train 1")]
        with pytest.raises(UnknownNameError, match="unknown LLM task 'grounded_q'. Did you mean 'grounded_qa'"):
            prompt_rows("grounded_q", docs=2)
    finally:
        tasks.unregister("echo_task_for_test")
