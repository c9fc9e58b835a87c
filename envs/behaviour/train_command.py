"""``rlcf train-behaviour ENV``: the subcommand that trains a PPO behaviour policy
(:func:`~rlcf.envs.behaviour.ppo_train.train_behaviour`).

:data:`TRAIN_BEHAVIOUR` is registered in :data:`rlcf.registry.commands` when :mod:`rlcf.envs` is imported, so the
command line offers it without naming this module.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rlcf.cli_parts import CliCommand
from rlcf.envs.behaviour.ppo_config import DEFAULTS

__all__ = ["TRAIN_BEHAVIOUR", "add_train_behaviour_parser", "cmd_train_behaviour"]


def add_train_behaviour_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train-behaviour ENV [--iterations N] [--seed S] [--out-dir DIR] [--checkpoint-every K]``.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The new subcommand parser.
    """
    p = subparsers.add_parser(
        "train-behaviour",
        help="train a multi-agent PPO behaviour policy with RLlib (use it as --policy trained)",
        description="Example: rlcf train-behaviour mpe-simple_spread --iterations 100 --seed 0. Writes "
        "DIR/ENV/seedS/ with curve.jsonl, behaviour.json and iter_* checkpoints.",
    )
    p.add_argument("env", help="env id (see `rlcf list envs`)")
    p.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], help="PPO iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="runs/behaviour", help="root of the run folders")
    p.add_argument(
        "--checkpoint-every", type=int, default=DEFAULTS["checkpoint_every"], help="iterations between checkpoints"
    )
    p.add_argument("--train-batch-size", type=int, default=DEFAULTS["train_batch_size"], help="env steps per iteration")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--env-runners", type=int, default=0, choices=(0, 1), help="0: sample in this process; 1: one Ray worker")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    return p


def cmd_train_behaviour(args: argparse.Namespace) -> int:
    """Run ``rlcf train-behaviour``; prints one JSON line with the run folder and the last team return.

    Args:
        args: parsed arguments of :func:`add_train_behaviour_parser`.

    Returns:
        0 on success (errors raise; the CLI maps them to exit codes).
    """
    from rlcf.envs.behaviour.ppo_train import train_behaviour
    from rlcf.envs.behaviour.trained import find_checkpoint
    from rlcf.progress import progress

    last: dict[str, Any] = {}
    with progress(f"train-behaviour {args.env}", total=args.iterations) as bar:

        def report(row: dict[str, Any]) -> None:
            last.update(row)
            shown = {"team_return": row["team_return"]} if row["team_return"] is not None else {}
            bar.advance(1, env_steps=row["env_steps"], **shown)

        run = train_behaviour(
            args.env,
            args.out_dir,
            iterations=args.iterations,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            train_batch_size=args.train_batch_size,
            lr=args.lr,
            num_env_runners=args.env_runners,
            overwrite=args.overwrite,
            progress=report,
        )
    team = last.get("team_return")
    print(
        json.dumps(
            {
                "run": str(run),
                "env": args.env,
                "iterations": last.get("iteration"),
                "env_steps": last.get("env_steps"),
                "team_return": None if team is None else round(team, 4),
                "checkpoint": str(find_checkpoint(run)),
            }
        )
    )
    return 0


TRAIN_BEHAVIOUR = CliCommand(add_parser=add_train_behaviour_parser, run=cmd_train_behaviour)
