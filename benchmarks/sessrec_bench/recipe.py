"""The default recipe of the quality benchmark: settings derived from the training split by a stated rule, the model
extensions it trains with, and the data-dependent starts of their weights.

``benchmarks/configs/default.toml`` sets what depends on the data to ``"auto"``; :func:`recipe_config` fills those
from :func:`recipe_settings` of the training sessions' :class:`SplitStats` (never from the test file). The neural
models train with the chunked exact loss and the repeat extensions' starting values (:class:`RepeatStarts`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from sessrec_bench.sampled_loss import SampledLoss
from sessrec_course.training.torch_trainer import Callback, Run

logger = logging.getLogger(__name__)

AUTO = "auto"  # a setting the recipe derives from the training split (recipe_settings)
TRAINING_CAP_S = 900.0  # the neural training of a split, all seeds together, never takes longer
MAX_MEMBERS = 4  # seeds of the ensemble where one model's budget leaves room under the cap


def hold_out(sessions: list, n_valid: int, how: str = "latest", seed: int = 42) -> tuple[list, list]:
    """Split ``sessions`` into ``(kept, held out)`` with ``n_valid`` held out: the latest (the files are in time
    order) or, with ``how="random"``, a seeded sample, so the most recent sessions are still trained on."""
    if not 0 < n_valid < len(sessions):
        raise ValueError(f"valid_sessions must be between 1 and {len(sessions) - 1} (the training sessions), got {n_valid}")
    if how == "latest":
        return sessions[:-n_valid], sessions[-n_valid:]
    if how != "random":
        raise ValueError(f"valid_holdout must be 'latest' or 'random', got {how!r}")
    chosen = np.zeros(len(sessions), dtype=bool)
    chosen[np.random.default_rng(seed).choice(len(sessions), n_valid, replace=False)] = True
    return [sessions[i] for i in np.flatnonzero(~chosen)], [sessions[i] for i in np.flatnonzero(chosen)]


def latest_held_out(sessions: list, max_held_out: int = 2000) -> tuple[list, list]:
    """:func:`hold_out` of the latest tenth (at most ``max_held_out``) for a check; nothing held out where nothing
    could be checked: too few sessions, no click before them or no next item in them."""
    n_held = min(max_held_out, len(sessions) // 10)
    if n_held == 0:
        return list(sessions), []
    fit, held = hold_out(sessions, n_held)
    if not any(len(s) for s in fit) or not any(len(s) > 1 for s in held):
        return list(sessions), []
    return fit, held


@dataclass(frozen=True)
class SplitStats:
    """What the default recipe reads from the training sessions (never from the test set)."""

    sessions: int
    cases: int  # (prefix, next item) pairs
    items: int  # distinct items
    length_p95: float  # 95th percentile of the session length
    repeat_ratio: float  # share of next items already in their session's prefix
    spop_mrr: float = 0.0  # MRR@20 of S-POP (re-clicks by count) on the latest tenth of the sessions ...
    markov_mrr: float = 0.0  # ... and of the Markov chain (transitions), both fitted on the rest


def split_stats(sessions: list[np.ndarray]) -> SplitStats:
    """Count what :func:`recipe_settings` needs from training ``sessions`` (1-D id arrays, time order)."""
    lengths = np.array([len(s) for s in sessions], dtype=np.int64)
    cases = int(np.clip(lengths - 1, 0, None).sum())
    repeats = sum(len(s) - len(np.unique(s)) for s in sessions)  # a re-click's item was in the prefix already
    items = len(np.unique(np.concatenate(sessions))) if sessions else 0
    return SplitStats(len(sessions), cases, items, float(np.percentile(lengths, 95)) if len(lengths) else 0.0,
                      repeats / max(1, cases), *repeat_or_transition_mrr(sessions))


def repeat_or_transition_mrr(sessions: list[np.ndarray], max_held_out: int = 2000) -> tuple[float, float]:
    """MRR@20 of S-POP and of the Markov chain on the latest tenth of ``sessions`` (at most ``max_held_out``), both
    fitted on the earlier ones: whether re-clicks or transitions predict this data better. ``(0, 0)``: too few."""
    from sessrec_course.baselines import MarkovChain, SessionPopular
    from sessrec_course.evaluation import all_prefixes, evaluate

    fit, held = latest_held_out(sessions, max_held_out)
    if not held:
        return 0.0, 0.0
    n_items = int(max(int(s.max()) for s in sessions if len(s))) + 1
    prefixes, targets = all_prefixes(held, max_length=20)
    models = (SessionPopular(), MarkovChain())
    return tuple(float(evaluate(m.fit(fit, max(n_items, 3)), prefixes, targets, ks=20, progress=False)["MRR@20"])
                 for m in models)


def recipe_settings(stats: SplitStats) -> dict:
    """The data-dependent settings of the default recipe, by a stated rule (issue #24, docs/benchmarks.md).

    - ``max_length``: the 95th percentile of the session length rounded up to a multiple of 10, in [20, 50];
    - ``valid_sessions``: 5 % of the training sessions, in [100, 3000] (and never more than a tenth);
    - ``batch_size``: 128 unless an epoch would have fewer than 500 steps: then the power of two that gives about
      500, at least 32 (small splits need more, smaller steps, not fewer epochs);
    - ``repeat_bias``: on where at least 1 % of next items are re-clicks;
    - ``repeat_mixture``: with the repeat bias, where S-POP out-predicts the Markov chain on the latest tenth of the
      training sessions (:func:`repeat_or_transition_mrr`); where transitions lead, the additive bias ranks better;
    - ``time_budget_s``: 1 s of training per 250 training cases, in [120, 900];
    - ``repeat_bias_start``: ``"data"`` (:func:`repeat_bias_start`) where items average fewer than 5 training cases
      each, else ``"zero"``: that start is calibrated against near-uniform item scores, which is what they stay at
      when items are seen once or twice;
    - ``sampled_negatives``: sampled softmax with 4096 uniform draws (:mod:`sessrec_bench.sampled_loss`) where the
      training sessions hold at least 8 times as many distinct items, else 0 (the exact loss): on a large catalogue
      the full softmax dominates the step, and a short budget buys more steps with the sampled one (below 8 times
      the step saves too little to pay for the noisier gradient);
    - ``ensemble``: as many seeds as fit ``time_budget_s`` each under the 900 s cap, at most 4, their softmax
      averaged: where the budget is short (small splits), one model has converged and more seeds are what the
      spare time buys.
    """
    max_length = int(min(50, max(20, 10 * np.ceil(stats.length_p95 / 10))))
    valid = int(min(3000, max(100, stats.sessions // 20), max(1, stats.sessions // 10)))
    budget = float(min(TRAINING_CAP_S, max(120, stats.cases / 250)))
    batch = 128
    while batch > 32 and (stats.sessions - valid) / batch < 500:
        batch //= 2
    return {"max_length": max_length, "valid_sessions": valid, "batch_size": batch,
            "repeat_bias": stats.repeat_ratio >= 0.01,
            "repeat_mixture": stats.repeat_ratio >= 0.01 and stats.spop_mrr > stats.markov_mrr,
            "time_budget_s": budget, "ensemble": seeds_for(budget),
            "repeat_bias_start": "data" if stats.cases < 5 * max(1, stats.items) else "zero",
            "sampled_negatives": SampledLoss.negatives if stats.items >= 8 * SampledLoss.negatives else 0}


def seeds_for(budget_s: float | None) -> int:
    """How many seeds of ``budget_s`` each fit the 900 s training cap (at most 4; 1 without a budget)."""
    if budget_s is None or budget_s <= 0:
        return 1
    return int(max(1, min(MAX_MEMBERS, TRAINING_CAP_S // budget_s)))


def resolve_auto(config: dict, settings: dict) -> dict:
    """Return ``config`` with every ``"auto"`` value replaced by the recipe's ``settings`` (same key names).

    ``max_length`` and ``valid_sessions`` are top-level keys, ``batch_size`` sits in ``[train]`` (or a model's
    ``[train]``), ``repeat_bias`` in ``[models.<preset>]``.
    """
    def fill(table: dict, where: str) -> dict:
        out = {}
        for key, value in table.items():
            if isinstance(value, dict):
                out[key] = fill(value, f"{where}{key}.")
            elif value == AUTO:
                if key not in settings:
                    raise ValueError(f"{config.get('_path', 'config')}: {where}{key} = 'auto' has no rule; "
                                     f"'auto' is allowed for {sorted(settings)}")
                out[key] = settings[key]
            else:
                out[key] = value
        return out

    return fill(config, "")


def recipe_config(config: dict, train_sessions: list[np.ndarray], label: str = "") -> tuple[dict, SplitStats, dict]:
    """``config`` with its ``"auto"`` settings derived from ``train_sessions``; also the split stats and the settings."""
    stats = split_stats(train_sessions)  # the training split only: the test file never picks a setting
    settings = recipe_settings(stats)
    logger.info("%s: %s -> recipe %s", label, stats, settings)
    resolved = resolve_auto(config, settings)
    if config.get("ensemble") == AUTO:  # the seeds follow the budget the run has, a config's own included
        resolved["ensemble"] = seeds_for(resolved.get("time_budget_s"))
    return resolved, stats, settings


def repeat_bias_start(sessions: list[np.ndarray], max_length: int, n_items: int) -> np.ndarray:
    """Starting values of the repeat bias ``r[d]``, d = 0..max_length-1, from how often the next item re-clicks d back.

    ``r[d] = ln(q_d · n_items / (1 - q))`` where ``q_d`` is the share of next items whose latest earlier click is
    d steps before the last one and ``q`` their sum: against near-uniform item scores at the start, each distance
    then gets its observed share of the softmax mass, so re-clicks are predicted from the first step.
    """
    counts, cases = np.zeros(max_length), 0
    for session in sessions:
        last_seen: dict[int, int] = {}
        for t, item in enumerate(session.tolist()):
            if t:
                cases += 1
                d = t - 1 - last_seen.get(item, -max_length - 1)
                if d < max_length:
                    counts[d] += 1
            last_seen[item] = t
    share = counts / max(1, cases)
    rest = max(1e-3, 1.0 - share.sum())
    return np.where(share > 0, np.log(np.maximum(share, 1e-12) * n_items / rest), 0.0).astype(np.float32)


def repeat_gate_start(repeat_ratio: float) -> float:
    """The repeat gate's starting bias ``logit(q)``: every session starts at the split's re-click share ``q``."""
    q = min(0.99, max(0.01, float(repeat_ratio)))
    return float(np.log(q / (1.0 - q)))


class RepeatStarts(Callback):
    """Before training: the additive repeat bias from the split's re-click shares (``bias``, when given) and the
    RepeatNet gate at its re-click share (``gate_bias``, when the model has a gate)."""

    order = 5  # before the time budget probes a step

    def __init__(self, bias: np.ndarray | None = None, gate_bias: float | None = None) -> None:
        self.bias, self.gate_bias = bias, gate_bias

    def before_fit(self, run: Run) -> None:
        with torch.no_grad():
            if self.bias is not None:
                run.model.repeat_bias.copy_(torch.from_numpy(self.bias))
            if self.gate_bias is not None and hasattr(run.model, "repeat_gate"):
                run.model.repeat_gate.bias.fill_(self.gate_bias)
