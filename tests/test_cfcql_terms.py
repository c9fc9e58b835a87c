"""CFCQL's defining lines on hand-computed cases (paper Eq. 4 and the λ weights)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rlcf.algos.cfcql import (
    counterfactual_lambda,
    counterfactual_penalty,
    discrete_counterfactual_q,
    discrete_divergence,
)
from rlcf.algos.macql import joint_logsumexp_discrete
from rlcf.algos.td_base import counterfactual_critic_values, counterfactual_joint_actions


def additive(q, state):  # Q_tot = Σ_i q_i: a mixer whose numbers can be done by hand
    return q.sum(-1)


def test_counterfactual_term_on_a_two_agent_three_action_toy():
    # q_1 = [1, 2, 3], q_2 = [0, 1, 0]; dataset actions a_1 = 0, a_2 = 1, so Q_tot(s, a^D) = 1 + 1 = 2.
    agent_q = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]])
    actions = torch.tensor([[0, 1]])
    q_cf = discrete_counterfactual_q(agent_q, actions, torch.zeros(1, 4), additive)
    # agent 1 varies, agent 2 stays at its dataset action (q_2 = 1): [1+1, 2+1, 3+1]
    # agent 2 varies, agent 1 stays at its dataset action (q_1 = 1): [1+0, 1+1, 1+0]
    assert q_cf.tolist() == [[[2.0, 3.0, 4.0], [1.0, 2.0, 1.0]]]
    ns_1 = math.log(math.exp(2) + math.exp(3) + math.exp(4))  # 4.407606
    ns_2 = math.log(math.exp(1) + math.exp(2) + math.exp(1))  # 2.551445
    lse = torch.logsumexp(q_cf, -1)
    assert lse[0, 0].item() == pytest.approx(ns_1, abs=1e-6) and lse[0, 1].item() == pytest.approx(ns_2, abs=1e-6)
    uniform = counterfactual_lambda(torch.zeros(1, 2), temperature=1.0, mode="uniform")
    penalty = counterfactual_penalty(lse, uniform, torch.tensor([2.0]))
    assert penalty.item() == pytest.approx(0.5 * ns_1 + 0.5 * ns_2 - 2.0, abs=1e-6)  # 1.479525
    skewed = counterfactual_penalty(lse, torch.tensor([[0.8, 0.2]]), torch.tensor([2.0]))
    assert skewed.item() == pytest.approx(0.8 * ns_1 + 0.2 * ns_2 - 2.0, abs=1e-6)


def test_lambda_sums_to_one_and_follows_the_most_deviating_agent():
    divergence = torch.tensor([[0.1, 0.1, 2.0], [1.0, 0.0, 0.0]])
    for mode in ("uniform", "softmax", "argmax"):
        lam = counterfactual_lambda(divergence, temperature=2.0, mode=mode)
        assert torch.allclose(lam.sum(-1), torch.ones(2))
    soft = counterfactual_lambda(divergence, temperature=2.0)
    assert soft[0].argmax() == 2 and soft[1].argmax() == 0
    expected = torch.softmax(torch.tensor([0.2, 0.2, 4.0]), 0)
    assert torch.allclose(soft[0], expected)
    assert torch.equal(counterfactual_lambda(divergence, 2.0, "argmax"), torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(counterfactual_lambda(divergence, 0.0), torch.full((2, 3), 1 / 3))  # τ = 0 is uniform
    hotter = counterfactual_lambda(divergence, temperature=10.0)
    assert hotter[0, 2] > soft[0, 2], "a larger temperature concentrates λ on the deviating agent"


def test_lambda_from_policy_behaviour_divergence():
    """Agent 0's implied policy matches its behaviour policy; agent 1's does not: agent 1 gets the larger λ."""
    q_cf = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]])
    behaviour_logits = torch.tensor([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]])  # agent 0: β = μ; agent 1: reversed
    valid = torch.ones(1, 2, 3, dtype=torch.bool)
    kl = discrete_divergence(q_cf, behaviour_logits, valid)
    assert kl[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    mu = torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0)
    beta = torch.softmax(torch.tensor([3.0, 2.0, 1.0]), 0)
    assert kl[0, 1].item() == pytest.approx(float((mu * (mu.log() - beta.log())).sum()), abs=1e-6)
    lam = counterfactual_lambda(kl, temperature=1.0)
    assert lam[0, 1] > 0.5 > lam[0, 0]
    # padded (invalid) actions take no probability mass
    valid_padded = torch.tensor([[[True, True, False], [True, True, True]]])
    kl_padded = discrete_divergence(q_cf, behaviour_logits, valid_padded)
    assert torch.isfinite(kl_padded).all() and kl_padded[0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_macql_penalty_grows_with_agents_while_cfcql_does_not():
    """Same per-agent values, n = 2, 4, 8: the joint logsumexp gap grows ~linearly in n; the counterfactual one stays flat."""
    gen = torch.Generator().manual_seed(0)
    A, B = 3, 64
    macql, cfcql = {}, {}
    for n in (2, 4, 8):
        agent_q = torch.randn(B, n, A, generator=gen)
        actions = torch.randint(A, (B, n), generator=gen)
        state = torch.zeros(B, 1)
        q_data = additive(agent_q.gather(-1, actions.unsqueeze(-1)).squeeze(-1), state)
        every_joint = torch.tensor(list(itertools.product(range(A), repeat=n))).expand(B, -1, -1)  # all A^n joint actions
        macql[n] = (joint_logsumexp_discrete(agent_q, every_joint, state, additive) - q_data).mean().item()
        lse = torch.logsumexp(discrete_counterfactual_q(agent_q, actions, state, additive), -1)
        cfcql[n] = counterfactual_penalty(lse, counterfactual_lambda(lse, 0.0, "uniform"), q_data).item()
    assert macql[4] > 1.7 * macql[2] and macql[8] > 1.7 * macql[4], macql
    assert max(cfcql.values()) < 1.3 * min(cfcql.values()), cfcql
    assert cfcql[8] < macql[8] / 4


def test_counterfactual_joint_actions_replace_only_agent_i():
    data = torch.arange(6.0).reshape(1, 3, 2)  # 3 agents, 2-d actions
    cand = -torch.ones(1, 3, 4, 2)  # 4 candidates per agent
    joint = counterfactual_joint_actions(data, cand)
    assert joint.shape == (1, 3, 4, 3, 2)
    for i in range(3):
        for k in range(3):
            expected = cand[0, i, 0] if k == i else data[0, k]
            assert torch.equal(joint[0, i, 0, k], expected)


def test_counterfactual_critic_values_match_the_direct_evaluation():
    # The fast path (first layer shared across counterfactuals) against critic([s, a with slot i replaced]).
    from rlcf.algos.common import AgentMLP

    torch.manual_seed(0)
    B, n, K, d, S = 5, 3, 4, 2, 7
    critic = AgentMLP(2, S + n * d, 1, (16, 16))
    state, actions, cand = torch.randn(B, S), torch.rand(B, n, d) * 2 - 1, torch.rand(B, n, K, d) * 2 - 1
    fast = counterfactual_critic_values(critic, state, actions, cand)
    x = torch.cat([state[:, None, None, :].expand(B, n, K, S), counterfactual_joint_actions(actions, cand).flatten(-2)], -1)
    direct = critic(x.unsqueeze(-2).expand(*x.shape[:-1], 2, x.shape[-1])).squeeze(-1)
    assert fast.shape == (B, n, K, 2)
    torch.testing.assert_close(fast, direct, rtol=1e-5, atol=1e-5)
    # Gradients flow to every parameter the same way.
    g_fast = torch.autograd.grad(fast.sum(), list(critic.parameters()))
    g_direct = torch.autograd.grad(direct.sum(), list(critic.parameters()))
    for a, b in zip(g_fast, g_direct):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
