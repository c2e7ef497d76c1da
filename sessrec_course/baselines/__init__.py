"""Baselines that keep neural models honest: popularity, S-POP, Markov chain, sequential rules, V-SKNN.

Each has ``fit(sessions, n_items)`` and the course's ``score(item_ids) -> (B, n_items)`` protocol, so
``evaluation.evaluate`` treats them like any model. Sparse matrices (scipy) keep fitting to seconds for
millions of events.
"""

from sessrec_course.baselines.base import Baseline, last_items, two_tier
from sessrec_course.baselines.knn import VSKNN
from sessrec_course.baselines.popularity import MostPopular, SessionPopular
from sessrec_course.baselines.rules import MarkovChain, SequentialRules, transition_matrix


def default_baselines() -> dict[str, Baseline]:
    """Return the course's baseline line-up, unfitted, by display name."""
    return {
        "POP": MostPopular(),
        "S-POP": SessionPopular(),
        "Markov": MarkovChain(),
        "SR": SequentialRules(),
        "V-SKNN": VSKNN(),
    }


__all__ = [
    "VSKNN",
    "Baseline",
    "MarkovChain",
    "MostPopular",
    "SequentialRules",
    "SessionPopular",
    "default_baselines",
    "last_items",
    "transition_matrix",
    "two_tier",
]
