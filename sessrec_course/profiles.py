"""Run profiles: one environment variable sets data size, epochs and the like for the whole course.

``SESSREC_PROFILE=ci`` (tests, minutes), ``workshop`` (default on a CPU) or ``full`` (default with a
CUDA GPU). Every notebook and command reads sizes through :func:`get_profile` and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

from sessrec_course import device

ENV_VAR = "SESSREC_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes for one run of the course."""

    name: str
    n_events: int  # events in the generated default click log
    n_items: int  # catalogue size of the generated data
    n_categories: int
    n_days: int  # days of activity in the generated log
    max_length: int  # sessions are truncated to their last `max_length` events
    epochs: int
    batch_size: int
    hidden_size: int
    learning_rate: float
    eval_max_sessions: int | None  # cap on evaluated sessions (None: all)
    serving_sessions: int  # sessions compared between Triton and the in-process model
    load_test_requests: int  # requests per concurrency level in the serving load test
    seed: int = 42

    def to_dict(self) -> dict:
        """Return the profile as a plain dict (for logs and reports)."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci", n_events=300_000, n_items=2_000, n_categories=20, n_days=28, max_length=20,
        epochs=1, batch_size=64, hidden_size=128, learning_rate=2e-3, eval_max_sessions=2_000,
        serving_sessions=128, load_test_requests=300,
    ),
    "workshop": Profile(
        name="workshop", n_events=1_000_000, n_items=5_000, n_categories=30, n_days=42, max_length=20,
        epochs=3, batch_size=256, hidden_size=128, learning_rate=2e-3, eval_max_sessions=10_000,
        serving_sessions=512, load_test_requests=2_000,
    ),
    "full": Profile(
        name="full", n_events=20_000_000, n_items=40_000, n_categories=100, n_days=56, max_length=30,
        epochs=10, batch_size=1024, hidden_size=256, learning_rate=1e-3, eval_max_sessions=None,
        serving_sessions=1_000, load_test_requests=10_000,
    ),
}


def default_profile_name() -> str:
    """Return ``full`` when a CUDA GPU is visible, else ``workshop``."""
    return "full" if device.cuda_available() else "workshop"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile ``name``, else ``$SESSREC_PROFILE``, else the machine's default; keywords override fields."""
    chosen = (name or os.environ.get(ENV_VAR) or "").strip().lower() or default_profile_name()
    if chosen not in PROFILES:
        raise ValueError(
            f"unknown profile {chosen!r} (from {'argument' if name else ENV_VAR}); "
            f"expected one of {sorted(PROFILES)}"
        )
    profile = PROFILES[chosen]
    return replace(profile, **overrides) if overrides else profile
