"""The ``rlcf`` command line.

Exit codes scripts can trust: 0 success, 2 bad usage or input (unknown name, bad config field, missing
file), 1 a failure while doing the work, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlcf.cli_parts import CommandParser, experiment_source, print_table
from rlcf.errors import UsageError

log = logging.getLogger("rlcf")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

LIST_KINDS = ("envs", "suites", "policies", "rewards", "algos", "tasks", "datasets")

def build_parser() -> argparse.ArgumentParser:
    from rlcf import __version__

    parser = CommandParser(
        prog="rlcf",
        description="Counterfactual reinforcement learning: CFCQL, DeFacto-style GRPO, DNA-Train.",
        epilog="Exit codes: 0 ok, 2 bad usage or input, 1 failure while running, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"rlcf {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars; log lines only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module or .py file that registers your rewards, envs, policies or algorithms "
        "(repeatable; may stand anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)

    p = sub.add_parser("list", help="list registered envs, suites, policies, rewards, algos, or local datasets")
    p.add_argument("kind", choices=LIST_KINDS)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "train",
        help="train an algorithm from a YAML experiment (or an algorithm name) with key=value overrides",
        description="Examples: rlcf train configs/cfcql/mpe_spread-medium.yaml run.seed=1 | "
        "rlcf train cfcql config.cql_alpha=1.0 | rlcf train cfg.yaml --resume | rlcf train runs/cfcql/x-20260101-000000 --resume",
    )
    p.add_argument(
        "experiment", help="YAML experiment file, an algorithm name for its defaults, or a run folder (with --resume)"
    )
    p.add_argument("overrides", nargs="*", help="key=value or section.key=value (run.seed=1 config.lr=3e-4)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint: of the given run folder, or of the newest run of this experiment",
    )

    p = sub.add_parser("config", help="print the resolved experiment (defaults + file + overrides) as YAML")
    p.add_argument("experiment", help="YAML experiment file, or an algorithm name")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--fields", action="store_true", help="list every field with its type, default and help")

    p = sub.add_parser(
        "collect",
        help="collect a multi-agent Minari dataset with Ray actors",
        description="Examples: rlcf collect mpe-simple_spread --tier expert --episodes 1000 --actors 2 | "
        "rlcf collect mpe-simple_tag --policy trained --policy-kwarg checkpoint=PATH --episodes 500",
    )
    p.add_argument("env", help="env id (see `rlcf list envs`)")
    p.add_argument("--tier", help="random | medium | medium-replay | expert | mixed")
    p.add_argument("--policy", help="behaviour policy for a custom dataset, or the expert a tier uses")
    p.add_argument("--policy-kwarg", action="append", default=[], metavar="KEY=VALUE", help="policy argument")
    p.add_argument("--epsilon", type=float, default=0.0, help="random-action probability for --policy")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--actors", type=int, default=1, help="Ray actors (0: no Ray, this process)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset-id", help="default: rlcf/<env>/<tier>-v<version>")
    p.add_argument("--version", type=int, default=0)
    p.add_argument("--no-references", action="store_true", help="skip ref_min_score/ref_max_score")
    p.add_argument("--ref-episodes", type=int, default=100, help="episodes per reference return (>= 100)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of this id")

    p = sub.add_parser("relabel", help="write a copy of a dataset with rewards from a registered env reward")
    p.add_argument("dataset", help="source dataset id or folder")
    p.add_argument("--reward", required=True, help="env reward name (see `rlcf list rewards`)")
    p.add_argument("--dataset-id", help="default: <source name>-relabelled-v<N>")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("show", help="validate a dataset and print its statistics")
    p.add_argument("dataset", help="dataset id (rlcf/<env>/<tier>-vN) or folder")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "eval",
        help="evaluate trained runs (final checkpoints) and report normalized scores, IQM with 95%% CIs",
        description="Example: rlcf eval runs/cfcql/*-2026* --episodes 32 --json results.json --plot scores.png",
    )
    p.add_argument("runs", nargs="+", help="run folders (their newest checkpoint is evaluated)")
    p.add_argument("--episodes", type=int, default=32, help="episodes per evaluation (>= 32 for reported numbers)")
    p.add_argument("--seed", type=int, default=10_000, help="seed of the evaluation episodes")
    p.add_argument("--json", help="write marl-eval-compatible JSON here")
    p.add_argument("--jsonl", action="store_true",
                   help="machine-readable stdout: one JSON line per evaluated run (the table then goes to stderr)")
    p.add_argument("--plot", help="write the aggregate plot (PNG) here")
    p.add_argument("--actors", type=int, default=0, help="run episodes (or LLM generations) on this many Ray actors")

    _add_registered_commands(sub)

    p = sub.add_parser(
        "rollout",
        help="generate and score LLM completions with Ray rollout actors into a parquet rollout dataset",
        description="Example: rlcf rollout --model runs/defacto/x/final_model --task grounded_qa --docs 64 "
        "--rewards format,answer,grounding --num-generations 8 --actors 2 --out rollouts/qa",
    )
    p.add_argument("--model", required=True, help="Hugging Face model id or local folder")
    p.add_argument("--task", help="a registered LLM task (rlcf list tasks): grounded_qa | grounded_pairs | a plug-in's")
    p.add_argument("--data", help="prompt dataset: hub id, local folder or .parquet/.jsonl/.csv file with a 'prompt' column")
    p.add_argument("--split", default="eval", help="embedded task split (train | eval)")
    p.add_argument("--data-split", default="train", help="split of --data")
    p.add_argument("--docs", type=int, default=32, help="embedded task: documents (or pairs) to generate prompts from")
    p.add_argument("--rewards", default="", help="comma-separated reward names (see `rlcf list rewards`)")
    p.add_argument("--reward-weights", default="", help="comma-separated weights of --rewards (default 1 each)")
    p.add_argument("--num-generations", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=("auto", "hf", "vllm"))
    p.add_argument("--actors", type=int, default=1, help="Ray actors, one model copy each (0: no Ray, this process)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (and Ray CPUs) per actor; 0: the CPU share (1 per Ray actor)")
    p.add_argument("--prompts-per-shard", type=int, default=4)
    p.add_argument("--out", required=True, help="output folder (rollouts.parquet + meta.json)")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("demo", help="run the end-to-end quickstart on embedded defaults")
    p.add_argument("--out-dir", default="runs/demo", help="where the demo writes its runs and datasets")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per collected dataset")

    p = sub.add_parser(
        "launch",
        help="submit any rlcf command (train, collect, eval, ...) as a Ray job; see 'rlcf launch --help'",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser("jobs", help="list Ray jobs, show a job's status or logs, or stop it")
    p.add_argument("action", choices=("list", "status", "logs", "stop"))
    p.add_argument("job_id", nargs="?", help="the job id (status, logs, stop)")
    p.add_argument("--address", help="Ray dashboard address http://HEAD:8265 (default: RAY_ADDRESS)")
    p.add_argument("--follow", action="store_true", help="logs: stream until the job ends; exit with its status")
    p.add_argument("--json", action="store_true", help="list: machine-readable output")
    return parser


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger()
    if root.handlers:
        root.setLevel(level)
        return
    if sys.stderr.isatty() and not quiet:
        from rich.console import Console
        from rich.logging import RichHandler

        # stderr, beside the progress bars: stdout carries only results (tables, the final JSON line)
        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def cmd_list(args: argparse.Namespace) -> int:
    if args.kind == "datasets":
        from rlcf.data.catalog import local_datasets

        rows = local_datasets()
        columns = ("id", "episodes", "steps", "path")
    else:
        from rlcf.registry import get_registry

        reg = get_registry(args.kind)
        rows = [(e.name, e.source, e.summary()) for e in reg.entries()]
        columns = ("name", "source", "description")
    if args.json:
        print(json.dumps([dict(zip(columns, r)) for r in rows], indent=2))
    elif not rows:
        print(f"no {args.kind} registered yet" if args.kind != "datasets" else "no local datasets")
    else:
        print_table(f"rlcf {args.kind}", columns, rows)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlcf.algorithm import train

    target = Path(args.experiment)
    if target.is_dir():
        if not (target / "config.yaml").is_file():
            raise UsageError(f"'{target}' is a folder but not a run folder (it has no config.yaml)")
        if not args.resume:
            raise UsageError(
                f"'{target}' is a run folder: add --resume to continue it, "
                f"or pass '{target / 'config.yaml'}' to start a new run with the same config"
            )
        run, final = train(None, args.overrides, resume=target)
    else:
        source, algo = experiment_source(args.experiment)
        run, final = train(source, args.overrides, algo=algo, resume=args.resume, plugins=args.plugin)
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in final.items()}
    print(json.dumps({"run": str(run.path), "final": shown}))
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from rlcf.config import config_help, load_experiment, to_yaml

    source, algo = experiment_source(args.experiment)
    experiment = load_experiment(source, args.overrides, algo=algo, plugins=args.plugin)
    if args.fields:
        from rlcf.config import RunConfig

        rows = [("algo", "str", experiment.algo, "algorithm name")]
        rows += config_help(RunConfig, "run") + config_help(type(experiment.config), "config")
        print_table(f"fields of {experiment.algo}", ("field", "type", "default", "help"), rows)
    else:
        sys.stdout.write(to_yaml(experiment))
    return EXIT_OK


def _kwargs(items: Sequence[str]) -> dict[str, Any]:
    from rlcf.config import parse_overrides

    return {".".join(keys): value for keys, value in parse_overrides(items)}


def cmd_collect(args: argparse.Namespace) -> int:
    from rlcf.data.collect import collect_dataset

    for name in ("episodes", "ref_episodes"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    result = collect_dataset(
        args.env,
        tier=args.tier,
        policy=args.policy,
        policy_kwargs=_kwargs(args.policy_kwarg),
        epsilon=args.epsilon,
        episodes=args.episodes,
        actors=args.actors,
        seed=args.seed,
        dataset_id=args.dataset_id,
        version=args.version,
        references=not args.no_references,
        ref_episodes=args.ref_episodes,
        overwrite=args.overwrite,
    )
    stats = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.stats.items()}
    print(json.dumps({"dataset_id": result.dataset_id, "path": str(result.path), "seconds": round(result.seconds, 2), **stats}))
    return EXIT_OK


def cmd_relabel(args: argparse.Namespace) -> int:
    from rlcf.data.relabel import relabel_dataset

    new_id = relabel_dataset(args.dataset, args.reward, args.dataset_id, overwrite=args.overwrite)
    print(json.dumps({"dataset_id": new_id, "relabelled_from": args.dataset, "reward": args.reward}))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from rlcf.data.marl import dataset_stats, load_marl_dataset

    data = load_marl_dataset(args.dataset)
    meta = data.metadata
    stats = dataset_stats(data.episode_returns(), meta)
    info = {
        "dataset_id": data.dataset_id,
        "env": data.env_id,
        "agents": list(data.agents),
        "action_type": data.action_type,
        "steps": len(data),
        **stats,
        "behaviour": meta["rlcf"].get("behaviour"),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        rows = [(k, json.dumps(v) if isinstance(v, (dict, list)) else (round(v, 3) if isinstance(v, float) else v)) for k, v in info.items()]
        print_table(f"dataset {data.dataset_id}", ("field", "value"), rows)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Rebuild each run's algorithm from its folder, load the newest checkpoint, evaluate on its dataset's env."""
    from rlcf.device import resolve_device
    from rlcf.eval import SuiteResult, evaluate_policy, format_table, plot_aggregates, to_marl_eval_json
    from rlcf.registry import algos, envs
    from rlcf.runs import Run

    results: dict[str, dict[str, dict[int, Any]]] = {}
    llm: dict[str, Any] = {}
    runs = []
    for folder in args.runs:
        # A glob over runs/ also matches folders of runs that never started (older versions left them behind)
        # or cannot be rebuilt here: skip those with a warning, evaluate the others.
        try:
            run = Run.open(folder)
        except UsageError as exc:
            print(f"warning: skipping '{folder}': {exc}", file=sys.stderr)
            continue
        if not run.has_trained_state():
            print(f"warning: skipping '{folder}': it has no checkpoint (a run that failed or has not reached "
                  "its first checkpoint); delete the folder if it failed", file=sys.stderr)
            continue
        runs.append(run)
    if not runs:
        raise UsageError(f"none of the {len(args.runs)} folder(s) given is a run with a checkpoint to evaluate")
    for run in runs:
        folder = run.path
        exp = run.experiment
        cls = algos.get(exp.algo)
        if hasattr(cls, "evaluate_run"):  # LLM runs: per-split accuracy, abstention, grounding, format
            try:
                llm[str(run.path)] = cls.evaluate_run(run, actors=args.actors)
            except UsageError as exc:  # e.g. an SFT checkpoint but no model to evaluate yet
                print(f"warning: skipping '{folder}': {exc}", file=sys.stderr)
            continue
        if not hasattr(cls, "team_policy"):
            raise UsageError(f"run '{folder}' is a {exp.algo} run, which has no multi-agent policy to evaluate")
        algo = cls(exp.config, exp.run, resolve_device(exp.run.device))
        algo.load_state_dict(run.load_checkpoint(map_location=algo.device)["algorithm"])
        meta = algo.data.metadata
        from rlcf.eval.runner import RunPolicy

        policy = RunPolicy(run.path) if args.actors > 0 else algo.team_policy()
        result = evaluate_policy(
            envs.get(algo.data.env_id), policy, episodes=args.episodes, seed=args.seed,
            ref_min=meta.get("ref_min_score"), ref_max=meta.get("ref_max_score"), actors=args.actors,
        )
        task = f"{algo.data.env_id}/{algo.data.dataset_id.rsplit('/', 1)[-1]}"
        results.setdefault(exp.algo.rsplit(":", 1)[-1], {}).setdefault(task, {})[exp.run.seed] = result
        if args.jsonl:
            print(json.dumps({**result.to_dict(), "run": str(run.path), "task": task, "run_seed": exp.run.seed}))
        else:  # progress on stderr; stdout keeps the table
            score = result.normalized_score if result.normalized_score is not None else result.mean_return
            what = "normalized score" if result.normalized_score is not None else "return"
            print(f"{run.path.name}: {task}, seed {exp.run.seed}: {what} {score:.1f} over {args.episodes} episodes", file=sys.stderr)
    if not llm and not results:
        raise UsageError("none of the runs given could be evaluated (see the warnings above)")
    if llm:
        from rlcf.eval.llm import format_split_table, plot_reward_curves

        if args.jsonl:
            for k, v in llm.items():
                print(json.dumps({"run": k, **{s: sc.as_dict() | {"rows": sc.rows} for s, sc in v.items()}}))
        print(format_split_table({Path(k).name: v for k, v in llm.items()}), file=sys.stderr if args.jsonl else sys.stdout)
        if args.json:
            from rlcf.atomic import atomic_write_text

            payload = {k: {s: sc.as_dict() | {"rows": sc.rows} for s, sc in v.items()} for k, v in llm.items()}
            atomic_write_text(args.json, json.dumps(payload, indent=2))
        if args.plot:
            plot_reward_curves([Path(k) for k in llm], args.plot)
        if not results:
            return EXIT_OK
    suites = []
    for name, by_task in results.items():
        seeds = sorted({s for per_seed in by_task.values() for s in per_seed})
        complete = {t: r for t, r in by_task.items() if set(r) == set(seeds)}
        suites.append(SuiteResult(name, tuple(complete), tuple(seeds), complete))
    metric = "normalized_score" if all(
        r.normalized_score is not None for s in suites for per in s.results.values() for r in per.values()
    ) else "return"
    summaries = [s.summary(metric) for s in suites]
    print(format_table(summaries), file=sys.stderr if args.jsonl else sys.stdout)
    if args.json:
        to_marl_eval_json(suites, args.json)
    if args.plot:
        plot_aggregates(summaries, args.plot)
    return EXIT_OK


def cmd_rollout(args: argparse.Namespace) -> int:
    from rlcf.runtime.rollouts import RolloutConfig, generate_rollouts, prompt_rows

    rewards = tuple(r.strip() for r in args.rewards.split(",") if r.strip())
    try:
        weights = tuple(float(w) for w in args.reward_weights.split(",") if w.strip()) or None
    except ValueError as exc:
        raise UsageError(f"--reward-weights takes comma-separated numbers, got {args.reward_weights!r}") from exc
    config = RolloutConfig(
        model=args.model, num_generations=args.num_generations, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, rewards=rewards, reward_weights=weights,
        backend=args.backend, threads=args.threads,
    )
    rows = prompt_rows(args.task, args.data, split=args.split, docs=args.docs, seed=args.seed, data_split=args.data_split)
    options = {"num_gpus": args.gpus_per_actor} if args.gpus_per_actor else {}
    out = generate_rollouts(config, rows, actors=args.actors, prompts_per_shard=args.prompts_per_shard, out=args.out,
                            overwrite=args.overwrite, actor_options=options)
    means = {k: round(sum(r[k] for r in out if r.get(k) is not None) / max(1, sum(r.get(k) is not None for r in out)), 4)
             for k in (out[0] if out else {}) if k == "reward" or k.startswith("reward/")}
    print(json.dumps({"out": args.out, "prompts": len(rows), "rows": len(out), **means}))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from rlcf.demo import run_demo

    return run_demo(out_dir=args.out_dir, episodes=args.episodes)


def cmd_launch(args: argparse.Namespace) -> int:
    from rlcf.runtime.jobs import launch, parse_launch_args

    try:
        spec = parse_launch_args(args.args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    spec.plugins = list(args.plugin)
    return launch(spec)


def cmd_jobs(args: argparse.Namespace) -> int:
    from rlcf.runtime.jobs import jobs_main

    return jobs_main(args)


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "config": cmd_config,
    "collect": cmd_collect,
    "show": cmd_show,
    "relabel": cmd_relabel,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "launch": cmd_launch,
    "rollout": cmd_rollout,
    "jobs": cmd_jobs,
}


def _add_registered_commands(sub: Any) -> None:
    """Add the subcommands of :data:`rlcf.registry.commands` (rlcf's ``train-behaviour``, plug-ins' own)."""
    from rlcf.registry import commands

    for name in commands.names():
        if name in COMMANDS:
            raise UsageError(f"command '{name}' of {commands.entry(name).path} clashes with rlcf's own '{name}'")
        command = commands.get(name)
        command.add_parser(sub).set_defaults(_run=command.run)


def _take_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(argv without the --plugin options, their values)``: ``--plugin`` is global but may stand anywhere."""
    rest, plugins = [], []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            rest += argv[i:]
            break
        if tok == "--plugin":
            if i + 1 >= len(argv):
                raise UsageError("rlcf: --plugin needs a module name or a .py file (see 'rlcf --help')")
            plugins.append(argv[i + 1])
            i += 2
            continue
        if tok.startswith("--plugin="):
            plugins.append(tok.split("=", 1)[1])
        else:
            rest.append(tok)
        i += 1
    return rest, plugins


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlcf`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv, plugins = _take_plugins(argv)
        if plugins:
            from rlcf.plugins import load_plugins

            load_plugins(plugins)  # before any name is looked up, and before the parser: a plugin may add a subcommand
        parser = build_parser()
        # `rlcf launch` hands everything after it to the job, so argparse must not read it.
        first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
        if first is not None and argv[first] == "launch":
            args, extra = parser.parse_known_args([*argv[:first], "launch"])
            args.args = argv[first + 1:]
        else:
            args, extra = parser.parse_known_args(argv)
        # argparse cannot take positionals on both sides of a flag (`train x.yaml --resume a=1`): the
        # key=value words after the flag come back as extras and join the overrides.
        if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            raise UsageError(f"rlcf: unrecognized arguments: {' '.join(extra)} (see 'rlcf --help')")
        args.plugin = plugins
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from rlcf.progress import set_quiet

    set_quiet(args.quiet)
    _setup_logging(args.quiet, args.verbose)
    handler = getattr(args, "_run", None) or COMMANDS[args.command]
    try:
        return handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # TrainingInterrupted's message says how to resume
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into exit code 1
        log.exception("rlcf %s failed", args.command)
        print(f"error: rlcf {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
