"""The course's default click log: generated, deterministic, with sequential structure and known ground truth.

A session's latent intent (two categories) steers each next click: a repeat, an intent-weighted successor of the last
item, or a popular item of the intent (docs/design.md); :meth:`SyntheticLog.oracle_metrics` scores the truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sessrec_course.arrays import ranks_of

log = logging.getLogger(__name__)

START_DATE = np.datetime64("2024-03-04T00:00:00", "ns")  # a Monday
EVENT_TYPES = ("view", "cart", "purchase")
# relative session starts per hour of day (quiet nights, lunch and evening peaks)
HOURLY_PROFILE = np.array([2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 11, 10, 9, 9, 10, 11, 13, 15, 16, 14, 9, 5], float)
WEEKDAY_PROFILE = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 1.3])  # Monday .. Sunday


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator (defaults give the course's dataset)."""

    n_events: int = 200_000
    n_items: int = 2_000
    n_categories: int = 20
    n_days: int = 28
    seed: int = 42
    mean_length: float = 9.0  # mean events per session (geometric, >= 1)
    max_length: int = 100  # hard cap on generated session length
    item_zipf: float = 1.0  # exponent of item popularity
    category_zipf: float = 0.8
    n_successors: int = 50  # successor list length per item
    n_same_category: int = 2  # of which in the item's own category (rest: spread over the related categories)
    n_related: int = 6  # related categories per category (where successors and secondary intents come from)
    successor_group: int = 8  # items of one category share a successor list in groups of this size
    p_repeat: float = 0.30  # next event repeats one of the last `repeat_window` items
    repeat_window: int = 20
    p_successor: float = 0.40  # next event is a successor of the last item (intent-weighted)
    intent_boost: float = 100.0  # how strongly the intent reweights the successors
    p_switch: float = 0.08  # share of sessions (length >= 4) that switch intent once
    median_gap_s: float = 35.0  # median seconds between two events of a session
    hour_affinity: float = 0.0  # > 0: start hours lean to the primary category's peak hour by exp(a·cos(Δhour))


@dataclass
class SyntheticLog:
    """A generated click log plus the generator's ground truth."""

    events: pd.DataFrame
    config: GeneratorConfig
    item_category: np.ndarray  # (n_items,) category of each raw item id (raw ids are 1..n_items; index 0 unused)
    item_popularity: np.ndarray  # unnormalised Zipf weight per item
    successors: np.ndarray  # (n_items + 1, K) raw item ids
    successor_weights: np.ndarray  # (n_items + 1, K) base weights before the intent boost
    intents: pd.DataFrame = field(repr=False)  # per session: c1, c2, w1 and after `switch_at`: c1b, c2b, w1b

    def next_item_probabilities(self, history: np.ndarray, intent: tuple[int, int, float]) -> np.ndarray:
        """Return the true distribution (over raw ids 0..n_items) of the item following ``history``."""
        cfg = self.config
        p = np.zeros(cfg.n_items + 1, np.float64)
        history = np.asarray(history, np.int64)
        c1, c2, w1 = intent
        if len(history) == 0:
            return self._jump(p, c1, c2, 1.0, w1)
        recent = history[-cfg.repeat_window:]
        np.add.at(p, recent, cfg.p_repeat / len(recent))
        succ = self.successors[history[-1]]
        cats = self.item_category[succ]  # the successors' weights, boosted by the intent
        weight = self.successor_weights[history[-1]] * (1.0 + cfg.intent_boost * (w1 * (cats == c1)
                                                                                  + (1.0 - w1) * (cats == c2)))
        np.add.at(p, succ, cfg.p_successor * (weight / weight.sum()))
        return self._jump(p, c1, c2, 1.0 - cfg.p_repeat - cfg.p_successor, w1)

    def _jump(self, p: np.ndarray, c1: int, c2: int, mass: float, w1: float) -> np.ndarray:
        pop = self.item_popularity
        for cat, share in ((c1, w1), (c2, 1.0 - w1)):
            in_cat = self.item_category == cat
            p[in_cat] += mass * share * pop[in_cat] / pop[in_cat].sum()
        return p

    def intent_at(self, session_id: int, position: int) -> tuple[int, int, float]:
        """Return the latent intent (primary, secondary, weight) of a session at an event position."""
        row = self.intents.loc[session_id]
        if row.switch_at >= 0 and position >= row.switch_at:
            return int(row.c1b), int(row.c2b), float(row.w1b)
        return int(row.c1), int(row.c2), float(row.w1)

    def oracle_metrics(self, n_sessions: int = 1_000, k: int = 20, seed: int = 0,
                       session_ids: np.ndarray | None = None) -> dict[str, float]:
        """Recall@k and MRR@k of the true next-item distribution (it knows the intent) over every prefix of a sample."""
        rng = np.random.default_rng(seed)
        ev = self.events
        ids = ev["session_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        long_enough = np.flatnonzero(ends - starts >= 2)
        if session_ids is not None:  # only these sessions (e.g. the test split)
            long_enough = long_enough[np.isin(ids[starts[long_enough]], np.asarray(session_ids))]
        chosen = rng.choice(long_enough, size=min(n_sessions, len(long_enough)), replace=False)
        items, ranks = ev["item_id"].to_numpy(), []
        for s in chosen:
            seq, sid = items[starts[s]:ends[s]], int(ids[starts[s]])
            for t in range(1, len(seq)):
                p = self.next_item_probabilities(seq[:t], self.intent_at(sid, t))
                ranks.append(int(ranks_of(p[None, :], [seq[t]])[0]) - 1)  # 0-based, ties to the lower id
        n = max(len(ranks), 1)
        return {f"Recall@{k}": sum(r < k for r in ranks) / n, f"MRR@{k}": sum(1.0 / (r + 1) for r in ranks if r < k) / n,
                "cases": len(ranks)}


def _category_sampler(item_category: np.ndarray, weight: np.ndarray, n_categories: int, rng: np.random.Generator):
    """Return ``draw(categories) -> raw ids``: an item of each category, drawn proportionally to ``weight``."""
    order = np.argsort(item_category, kind="stable")
    cats_sorted = item_category[order]
    w = weight[order]
    seg_start = np.searchsorted(cats_sorted, np.arange(n_categories))
    seg_total = np.add.reduceat(w, seg_start)
    # cumulative weight normalised inside each category to (c, c+1]
    within = np.cumsum(w) - np.repeat(np.cumsum(seg_total) - seg_total, np.diff(np.r_[seg_start, len(w)]))
    cum = cats_sorted + within / np.repeat(seg_total, np.diff(np.r_[seg_start, len(w)]))

    def draw(categories: np.ndarray) -> np.ndarray:
        u = categories + rng.random(len(categories))
        idx = np.minimum(np.searchsorted(cum, u, side="left"), len(cum) - 1)
        return order[idx] + 1  # raw ids start at 1

    return draw


def _successor_groups(item_cat: np.ndarray, size: int) -> np.ndarray:
    """Return a group id per item (index 0, padding, alone): consecutive items of a category, ``size`` at a time."""
    if size <= 1:
        return np.arange(len(item_cat))
    order = np.argsort(item_cat, kind="stable")
    cats = item_cat[order]
    rank_in_cat = np.arange(len(cats)) - np.searchsorted(cats, cats)
    new_group = np.r_[True, (cats[1:] != cats[:-1]) | (rank_in_cat[1:] % size == 0)]
    group = np.empty(len(item_cat), np.int64)
    group[order] = np.cumsum(new_group) - 1
    return group


def _sample_intents(n: int, cat_p: np.ndarray, related: np.ndarray, rng: np.random.Generator):
    c1 = rng.choice(len(cat_p), size=n, p=cat_p)
    c2 = related[c1, rng.integers(0, related.shape[1], n)]
    random_c2 = rng.random(n) < 0.2
    c2[random_c2] = rng.choice(len(cat_p), size=int(random_c2.sum()), p=cat_p)
    w1 = rng.uniform(0.5, 0.8, n)
    return c1, c2, w1


def _catalogue(cfg: GeneratorConfig, rng: np.random.Generator):
    """Categories (Zipf), items (Zipf popularity), the category and price of each item, related categories."""
    n_cat, n_it = cfg.n_categories, cfg.n_items
    cat_weight = 1.0 / np.arange(1, n_cat + 1) ** cfg.category_zipf
    cat_weight = cat_weight[rng.permutation(n_cat)]
    cat_p = cat_weight / cat_weight.sum()
    every_category = np.r_[np.arange(n_cat), rng.choice(n_cat, size=n_it - n_cat, p=np.sqrt(cat_p) / np.sqrt(cat_p).sum())]
    item_cat = np.r_[-1, every_category[rng.permutation(n_it)]].astype(np.int64)  # index 0: padding
    pop = np.r_[0.0, (1.0 / np.arange(1, n_it + 1) ** cfg.item_zipf)[rng.permutation(n_it)]]
    base_price = np.exp(rng.normal(3.2, 0.8, n_cat))
    price = np.r_[0.0, np.round(base_price[item_cat[1:]] * np.exp(rng.normal(0, 0.35, n_it)), 2)].astype(np.float32)
    related = np.stack([(np.arange(n_cat) + rng.integers(1, n_cat, n_cat)) % n_cat for _ in range(cfg.n_related)],
                       axis=1)
    return cat_p, item_cat, pop, price, related


def _successor_lists(cfg: GeneratorConfig, item_cat: np.ndarray, related: np.ndarray, draw, rng: np.random.Generator):
    """Successor lists (shared by groups of items of a category) and their base weights."""
    k, k_same = cfg.n_successors, cfg.n_same_category
    group = _successor_groups(item_cat, cfg.successor_group)
    group_cat = np.full(group.max() + 1, -1)
    group_cat[group] = item_cat
    slot_cat = np.empty((len(group_cat), k), np.int64)
    slot_cat[:, :k_same] = group_cat[:, None]
    slot_cat[:, k_same:] = related[np.maximum(group_cat, 0)][:, np.arange(k - k_same) % cfg.n_related]
    succ = draw(slot_cat.ravel()).reshape(len(group_cat), k)
    succ = np.take_along_axis(succ, rng.random(succ.shape).argsort(axis=1), axis=1)[group]
    succ_w = np.broadcast_to(1.0 / np.arange(1, k + 1) ** 0.7, (cfg.n_items + 1, k)).copy()
    return succ, succ_w


def _sessions(cfg: GeneratorConfig, cat_p: np.ndarray, related: np.ndarray, rng: np.random.Generator):
    """Session lengths (geometric, summing to ``n_events``), intents before and after a switch, switch positions."""
    n_est = int(cfg.n_events / cfg.mean_length * 1.3) + 10
    lengths = np.minimum(rng.geometric(1.0 / cfg.mean_length, n_est), cfg.max_length)  # >= 1, mean ~mean_length
    cum = np.cumsum(lengths)
    n_sess = int(np.searchsorted(cum, cfg.n_events) + 1)
    lengths = lengths[:n_sess].copy()
    lengths[-1] -= int(cum[n_sess - 1] - cfg.n_events)
    first = _sample_intents(n_sess, cat_p, related, rng)
    second = _sample_intents(n_sess, cat_p, related, rng)
    switch_at = np.full(n_sess, -1, np.int64)
    can_switch = (lengths >= 4) & (rng.random(n_sess) < cfg.p_switch)
    switch_at[can_switch] = 2 + (rng.random(int(can_switch.sum())) * (lengths[can_switch] - 3)).astype(np.int64)
    return lengths, first, second, switch_at


def _clicks(cfg: GeneratorConfig, lengths: np.ndarray, first, second, switch_at: np.ndarray, item_cat: np.ndarray,
            succ: np.ndarray, succ_w: np.ndarray, draw, rng: np.random.Generator) -> np.ndarray:
    """Walk every session one position at a time: a repeat, an intent-weighted successor or a jump."""
    (c1, c2, w1), (c1b, c2b, w1b) = first, second
    k = cfg.n_successors
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    items = np.empty(cfg.n_events, np.int64)
    w_rep = cfg.repeat_window
    recent = np.zeros((len(lengths), w_rep), np.int64)  # ring buffer of the last `repeat_window` items
    cur1, cur2, curw = c1.copy(), c2.copy(), w1.copy()
    boost = cfg.intent_boost
    for t in range(int(lengths.max())):
        act = np.flatnonzero(lengths > t)
        sw = act[switch_at[act] == t]
        cur1[sw], cur2[sw], curw[sw] = c1b[sw], c2b[sw], w1b[sw]
        a1, a2, aw = cur1[act], cur2[act], curw[act]
        jump_cat = np.where(rng.random(len(act)) < aw, a1, a2)
        nxt = draw(jump_cat)
        if t > 0:
            u = rng.random(len(act))
            last = recent[act, (t - 1) % w_rep]
            # successor of the last item, reweighted by the intent
            s_items = succ[last]
            s_cat = item_cat[s_items]
            w = succ_w[last] * (1.0 + boost * (aw[:, None] * (s_cat == a1[:, None])
                                               + (1.0 - aw[:, None]) * (s_cat == a2[:, None])))
            cw = np.cumsum(w, axis=1)
            pick = (cw < rng.random(len(act))[:, None] * cw[:, -1:]).sum(axis=1)
            is_succ = (u >= cfg.p_repeat) & (u < cfg.p_repeat + cfg.p_successor)
            nxt = np.where(is_succ, s_items[np.arange(len(act)), np.minimum(pick, k - 1)], nxt)
            # repeat of one of the last (up to) `repeat_window` items
            back = (rng.random(len(act)) * min(t, w_rep)).astype(np.int64)
            rep = recent[act, (t - 1 - back) % w_rep]
            nxt = np.where(u < cfg.p_repeat, rep, nxt)
        items[offsets[act] + t] = nxt
        recent[act, t % w_rep] = nxt
    return items


def category_peak_hours(n_categories: int) -> np.ndarray:
    """The hour of day each category is most wanted at (``hour_affinity``): spread by the golden ratio."""
    return np.floor(24 * ((np.arange(n_categories) * 0.6180339887) % 1.0)).astype(np.int64)


def _start_hours(cfg: GeneratorConfig, primary: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Start hour per session: the daily profile, leaning towards the primary category's peak hour."""
    if cfg.hour_affinity <= 0:
        return rng.choice(24, size=len(primary), p=HOURLY_PROFILE / HOURLY_PROFILE.sum())
    delta = np.arange(24)[None, :] - category_peak_hours(cfg.n_categories)[:, None]
    weight = HOURLY_PROFILE[None, :] * np.exp(cfg.hour_affinity * np.cos(2 * np.pi * delta / 24))
    cdf = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)[primary]
    return np.minimum((cdf < rng.random(len(primary))[:, None]).sum(axis=1), 23)


def _timestamps(cfg: GeneratorConfig, lengths: np.ndarray, primary: np.ndarray, rng: np.random.Generator):
    """Seconds since ``START_DATE`` per event, the session of each event, session ids numbered in start order."""
    n_days, n_sess = cfg.n_days, len(lengths)
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    day_w = WEEKDAY_PROFILE[np.arange(n_days) % 7] * np.linspace(1.0, 1.15, n_days)  # slight growth
    day = rng.choice(n_days, size=n_sess, p=day_w / day_w.sum())
    hour = _start_hours(cfg, primary, rng)
    start_s = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n_sess)
    order = np.argsort(start_s, kind="stable")
    gaps = np.minimum(np.round(np.exp(rng.normal(np.log(cfg.median_gap_s), 1.0, cfg.n_events))), 1_800)
    session_of_event = np.repeat(np.arange(n_sess), lengths)
    gaps[offsets] = 0
    seconds = start_s[session_of_event] + (np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets], lengths))
    new_id = np.empty(n_sess, np.int64)
    new_id[order] = np.arange(1, n_sess + 1)
    return seconds, session_of_event, new_id


def generate_log(n_events: int = 200_000, n_items: int = 2_000, n_categories: int = 20, n_days: int = 28,
                 seed: int = 42, **knobs) -> SyntheticLog:
    """Generate the click log and keep the ground truth (see the module docstring). Deterministic for ``seed``."""
    cfg = GeneratorConfig(n_events=n_events, n_items=n_items, n_categories=n_categories, n_days=n_days,
                          seed=seed, **knobs)
    if n_events < 1 or n_items < 10 or n_categories < 4 or n_days < 1 or cfg.hour_affinity < 0:
        raise ValueError("generator needs n_events>=1, n_items>=10, n_categories>=4, n_days>=1, hour_affinity>=0; "
                         f"got {cfg}")
    rng = np.random.default_rng(seed)  # one stream, drawn from in a fixed order: the log is a function of the seed
    cat_p, item_cat, pop, price, related = _catalogue(cfg, rng)
    draw = _category_sampler(item_cat[1:], pop[1:], n_categories, rng)
    succ, succ_w = _successor_lists(cfg, item_cat, related, draw, rng)
    lengths, first, second, switch_at = _sessions(cfg, cat_p, related, rng)
    items = _clicks(cfg, lengths, first, second, switch_at, item_cat, succ, succ_w, draw, rng)
    seconds, session_of_event, new_id = _timestamps(cfg, lengths, first[0], rng)
    event_order = np.argsort(new_id[session_of_event], kind="stable")
    items = items[event_order]
    etype = rng.choice(len(EVENT_TYPES), size=n_events, p=[0.95, 0.04, 0.01]).astype(np.int8)
    events = pd.DataFrame({
        "session_id": new_id[session_of_event][event_order],
        "item_id": items,
        "timestamp": START_DATE + (seconds[event_order] * 1_000_000_000).astype("timedelta64[ns]"),
        "category": item_cat[items],
        "price": price[items],
        "event_type": pd.Categorical.from_codes(etype, categories=list(EVENT_TYPES)),
    })
    (c1, c2, w1), (c1b, c2b, w1b) = first, second
    intents = pd.DataFrame({"c1": c1, "c2": c2, "w1": w1, "switch_at": switch_at, "c1b": c1b, "c2b": c2b,
                            "w1b": w1b}, index=pd.Index(new_id, name="session_id")).sort_index()
    log.info("generated %d events in %d sessions over %d items", n_events, len(lengths), n_items)
    return SyntheticLog(events=events, config=cfg, item_category=item_cat, item_popularity=pop, successors=succ,
                        successor_weights=succ_w, intents=intents)


def generate_events(n_events: int = 200_000, n_items: int = 2_000, n_categories: int = 20, n_days: int = 28,
                    seed: int = 42) -> pd.DataFrame:
    """Generate the default click log as a canonical event table (see docs/design.md)."""
    return generate_log(n_events, n_items, n_categories, n_days, seed).events
