"""The cells every model lesson repeats, one call each: set-up, baselines, training, "beats Markov", nearest items.

Claims resting on the generated log's known structure are asserted on that log only, reported on a learner's own."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sessrec_course.ids import FIRST_ID
from sessrec_course.profiles import Profile, get_profile

COLUMNS = ("Recall@20", "MRR@20")
METRIC = "MRR@20"  # what lessons compare models by
OWN_DATA_NOTE = ("This is not the generated log, so nothing is asserted: on a small log, after one epoch, or where "
                 "the last click says most (many re-clicks), a first-order Markov chain is a strong baseline and "
                 "may win; more data or epochs (SESSREC_PROFILE=workshop) usually turn it round.")


def _display(obj: Any) -> None:
    """Show ``obj`` as a notebook output (rich display in Jupyter, its text elsewhere)."""
    from IPython.display import display

    display(obj)


def start(profile: Profile | str | None = None) -> tuple[Profile, Any, dict]:
    """The set-up cell: ``(profile, dataset, schema)``, the dataset prepared once then reused, and a line on them."""
    from sessrec_course.etl import prepare_default_dataset

    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    data = prepare_default_dataset(profile)
    schema = data.schema
    source = getattr(data, "source", "generated")
    print(f"profile {profile.name}: hidden_size={profile.hidden_size}, epochs={profile.epochs}, "
          f"batch_size={profile.batch_size}; data: {source}, catalogue={schema['item_cardinality']:,} ids")
    return profile, data, schema


def baselines(data, profile: Profile, names: Sequence[str] = ("POP", "Markov", "SR")
              ) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, float]]]:
    """The test cases and notebook 02's baselines on them, shown as a table: ``(prefixes, targets, results)``."""
    from sessrec_course.evaluation import results_table
    from sessrec_course.training.validation import baseline_results, test_cases

    prefixes, targets = test_cases(data, profile)
    results = baseline_results(data, profile, names=tuple(names))
    print(f"{len(targets):,} test cases (all prefixes)")
    _display(results_table(results, columns=COLUMNS).round(4))
    return prefixes, targets, results


def train(name: str, data, profile: Profile, **overrides) -> tuple[Any, Any]:
    """``train_model(name, data, profile)``, saying whether the model came from the checkpoint cache and how to retrain."""
    from sessrec_course.training.torch_pipeline import checkpoint_path, train_model

    folder = checkpoint_path(name, data, profile, **{k: v for k, v in overrides.items()
                                                     if k not in ("progress", "cache")})
    cached = (folder / "model.pt").exists() and overrides.get("cache", True)
    started = time.perf_counter()
    model, history = train_model(name, data, profile, **overrides)
    print(f"{name}: " + cache_note(folder, cached, time.perf_counter() - started,
                                   f"train_model({name!r}, data, profile, cache=False)"))
    return model, history


def cache_note(folder, cached: bool, seconds: float, retrain: str) -> str:
    """One sentence: were the weights trained now or loaded from the checkpoint cache, and how to retrain."""
    if cached:
        return (f"loaded in {seconds:.1f} s from the cache {folder} (same data, settings and model code as when it "
                f"was trained). To retrain: delete that folder, or call {retrain}.")
    return f"trained now in {seconds:.1f} s and cached in {folder}: the next run loads it."


def show_training(histories, results: Mapping[str, Mapping[str, float]], data=None) -> None:
    """The learning curves beside the Markov line, the best validation score of each run, and that the loss went down."""
    from sessrec_course import plots

    runs = histories if isinstance(histories, Mapping) else {"model": histories}
    _display(plots.learning_curves(runs, metric=METRIC, reference={"Markov (test)": results["Markov"][METRIC]}))
    for label, history in runs.items():
        last = history.epochs[-1]
        print(f"{label}: best epoch {history.best_epoch}, validation {METRIC} {history.best_score:.4f}; "
              f"{last['sessions_per_s']:,.0f} training sessions/s")
        if data is None or data.is_generated or last["train_loss"] < history.losses[0]:
            assert last["train_loss"] < history.losses[0], f"{label}: the training loss should go down"
        else:  # a learner's small log: one short epoch may not lower it yet
            print(f"{label}: on '{data.source}' the training loss did not go down in {len(history.losses)} steps; "
                  "a small log needs more epochs (SESSREC_PROFILE=workshop)")


def compare_with_markov(results: dict[str, dict[str, float]], name: str, data) -> float:
    """Show the results, record ``name``'s figures, return its MRR@20 lead over Markov (asserted on generated data)."""
    from sessrec_course.evaluation import results_table
    from sessrec_course.report import record

    for key in (name, "Markov"):
        if key not in results or METRIC not in results[key]:
            raise KeyError(f"results has no {METRIC!r} for {key!r} (models: {sorted(results)})")
    _display(results_table(results, columns=COLUMNS, sort_by=METRIC).round(4))
    for column in COLUMNS:
        if column in results[name]:
            record(column, results[name][column], model=name)
    gap = float(results[name][METRIC] - results["Markov"][METRIC])
    print(f"{name} - Markov {METRIC}: {gap:+.4f}")
    if getattr(data, "is_generated", True):
        assert gap > 0, f"the {name} should beat the Markov chain on the generated data (in every profile)"
    elif gap <= 0:
        print(OWN_DATA_NOTE)
    return gap


def item_vectors(model) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, category)`` of a session model's catalogue rows (its item embedding and item → category table)."""
    weight, category = (x.detach().cpu() if hasattr(x, "detach") else x  # torch tensors
                        for x in (model.item_embedding.weight, model.item_category))
    return np.asarray(weight)[: model.n_items], np.asarray(category)[: model.n_items]


def popular_items(targets: np.ndarray, n_items: int, n: int = 6) -> np.ndarray:
    """The ``n`` most frequent target items (real items only: never padding or OOV)."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=n_items)[:n_items].astype(float)
    counts[:FIRST_ID] = -1.0
    return np.argsort(-counts, kind="stable")[:n]


def category_agreement(embeddings: np.ndarray, category: np.ndarray, queries: Sequence[int], k: int = 10
                       ) -> tuple[float, float]:
    """Share of each query's ``k`` nearest real items (cosine) in its category, and that share by chance."""
    emb = np.asarray(embeddings, dtype=np.float64)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    category = np.asarray(category)
    real = np.arange(FIRST_ID, len(emb))
    same, chance = [], []
    for q in queries:
        others = real[real != q]
        nearest = others[np.argsort(-(unit[others] @ unit[q]), kind="stable")[:k]]
        same.append((category[nearest] == category[q]).mean())
        chance.append((category[others] == category[q]).mean())
    return float(np.mean(same)), float(np.mean(chance))


def nearest_items(embeddings: np.ndarray, category: np.ndarray, targets: np.ndarray, data, n_queries: int = 6,
                  k: int = 8) -> tuple[float, float]:
    """The nearest-items figure of the most clicked items; ``(category agreement, chance)``, asserted > chance on the
    generated log (categories drive its clicks)."""
    from sessrec_course import plots

    queries = popular_items(targets, len(embeddings), n_queries)
    _display(plots.nearest_items(embeddings, queries, k=k, item_category=category))
    if len(np.unique(np.asarray(category)[FIRST_ID:])) < 2:
        print("this log has no item categories, so there is no category agreement to measure")
        return float("nan"), float("nan")
    same, chance = category_agreement(embeddings, category, queries)
    print(f"neighbours in the same category: {same:.0%} (chance: {chance:.0%})")
    if getattr(data, "is_generated", True):
        assert same > chance, "items of one category should end up close together"
    elif same <= chance:
        print("Not asserted on your own log: categories there need not follow what is clicked together.")
    return same, chance


def served_agreement(served, expected) -> tuple[float, float]:
    """Share of identical top-k ids and largest score difference between the server's answer and the reference."""
    if len(served) != len(expected):
        raise ValueError(f"the server returned {len(served)} rows, the reference {len(expected)}")
    same_ids = float((served["item_id"].to_numpy() == expected["item_id"].to_numpy()).mean())
    gap = float(np.abs(served["score"].to_numpy() - expected["score"].to_numpy()).max())
    return same_ids, gap
