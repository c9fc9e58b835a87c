"""A small but real user plugin for the tests: least-squares regression trained by SGD.

It stands in for a user's own algorithm, registered through a ``"module:attr"`` path; it is not part of rlcf.
Every random stream it uses lives in its state dict, so a resumed run must reproduce an uninterrupted one
bit for bit. ``RLCF_TOY_CRASH_AT`` makes the process kill itself (SIGKILL) at that step, to test resume;
``RLCF_TOY_SIGNAL_AT=STEP:SIGNAME`` sends it that signal during that step (``7:SIGINT``), to test a graceful stop.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Literal

import torch

from rlcf.algorithm import StepAlgorithm
from rlcf.config import option, require


@dataclass
class ToyConfig:
    lr: float = option(0.05, "SGD learning rate.")
    batch_size: int = option(16, "Samples per step.")
    dim: int = option(4, "Input dimension.")
    noise: float = option(0.01, "Label noise std.")
    optimizer: Literal["sgd", "adam"] = option("sgd", "Optimizer.")
    fail_at: int = option(0, "Raise RuntimeError at this step (0: never); tests the CLI's exit code 1.")

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.batch_size > 0, "batch_size", f"must be > 0, got {self.batch_size}")


class ToyRegression(StepAlgorithm):
    """Fit y = w·x with SGD on freshly sampled batches."""

    Config = ToyConfig

    def __init__(self, config: ToyConfig, run_config, device):
        super().__init__(config, run_config, device)
        self.gen = torch.Generator().manual_seed(run_config.seed)
        self.true_w = torch.randn(config.dim, generator=self.gen)
        self.model = torch.nn.Linear(config.dim, 1, bias=False)
        opt = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.Adam
        self.opt = opt(self.model.parameters(), lr=config.lr)

    def train_step(self, step: int):
        crash_at = int(os.environ.get("RLCF_TOY_CRASH_AT", "0"))
        if crash_at and step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        signal_at, _, signame = os.environ.get("RLCF_TOY_SIGNAL_AT", "").partition(":")
        if signal_at and step == int(signal_at):
            os.kill(os.getpid(), getattr(signal, signame))
        if self.config.fail_at and step == self.config.fail_at:
            raise RuntimeError(f"toy failure at step {step}")
        x = torch.randn(self.config.batch_size, self.config.dim, generator=self.gen)
        y = x @ self.true_w + self.config.noise * torch.randn(self.config.batch_size, generator=self.gen)
        loss = torch.mean((self.model(x).squeeze(-1) - y) ** 2)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"losses/mse": loss.item()}

    def evaluate(self, step: int):
        err = torch.linalg.vector_norm(self.model.weight.detach().squeeze(0) - self.true_w).item()
        return {"eval/toy/weight_error": err}

    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "gen": self.gen.get_state(),
            "true_w": self.true_w,
        }

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.true_w = state["true_w"]
