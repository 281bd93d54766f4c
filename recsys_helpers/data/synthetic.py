"""A synthetic shop with known ground truth, written in the RetailRocket `events.csv` format.

The generator plants the structure the paper reasons about, each piece behind a knob of
`ShopConfig`:

* long-term taste: each user has a Dirichlet mix over categories (`taste_concentration`);
* short-term intent: each session browses one category drawn from the user's current taste;
* interest shift: a share of users (`shift_fraction`) switch to a new taste for their last
  sessions (`shift_share`); they are flagged in the ground truth with the time of the switch;
* item-to-item patterns: items form chains A -> B -> C inside a category; the next view follows
  the chain with probability `p_chain`, and a purchase may be the complement of the last view;
* the view -> cart -> buy funnel: a session ends with an add-to-cart with probability `p_buy`,
  which becomes a transaction with probability `p_checkout`;
* long tails: Zipf item popularity inside categories, log-normal sessions per user, and casual
  visitors with 1-4 views whom the >= 5-interactions filter removes;
* time: sessions spread uniformly over 4.5 months (the RetailRocket window), seconds between views.

The purchased item of a session is drawn from a mixture whose weights are knobs:

    p(j) = w_viewed     * sum_t r_t [v_t = j]            (an item viewed in the session, recent first)
         + w_complement * [j = next(v_last)]             (the chain successor of the last view)
         + w_intent     * pop(j | intent category)
         + w_taste      * taste_u(cat(j)) * pop(j | cat(j))

with r_t = (1 - d) d^o for a view o steps before the end (the first view takes the remaining
mass d^(n-1)). Because nothing is drawn between the last view and the cart, this p(j) is the exact
probability of the next explicit item given everything before it, hidden state included. Ranking
by it (`SyntheticShop.oracle_scores`) is the ceiling no model can beat in expectation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .schema import finalize_events

START = np.datetime64("2015-05-03T00:00:00", "ms")
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class ShopConfig:
    """Knobs of the synthetic shop. Presets: `PRESETS` ("ci", "course", "retailrocket", "recobell")."""

    n_users: int = 5_000
    n_casual_users: int = 1_000
    n_items: int = 4_000
    n_categories: int = 40
    sessions_mean: float = 3.0  # log-normal mean of sessions per user (long-tailed activity)
    sessions_sigma: float = 0.9
    views_mean: float = 3.5  # mean views per session (1 + Poisson)
    popularity_exponent: float = 1.0  # Zipf exponent of popularity inside a category
    taste_concentration: float = 0.3  # Dirichlet concentration: small = few favourite categories
    p_chain: float = 0.4  # next view follows the item chain A -> B -> C
    p_buy: float = 0.3  # a session ends with an add-to-cart
    p_checkout: float = 0.3  # a cart becomes a transaction
    shift_fraction: float = 0.25  # users whose interest shifts ...
    shift_share: float = 0.35  # ... for this share of their last sessions (at least one)
    recency_decay: float = 0.6  # d in the recency weights over the session's views
    w_viewed: float = 0.45
    w_complement: float = 0.2
    w_intent: float = 0.2
    w_taste: float = 0.15
    days: float = 138.0  # 2015-05-03 .. 2015-09-18

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_categories"):
            if getattr(self, name) < 1:
                raise ValueError(f"ShopConfig.{name} must be >= 1, got {getattr(self, name)}.")
        for name in (
            "p_chain",
            "p_buy",
            "p_checkout",
            "shift_fraction",
            "shift_share",
            "recency_decay",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ShopConfig.{name} must be in [0, 1], got {getattr(self, name)}.")
        weights = (self.w_viewed, self.w_complement, self.w_intent, self.w_taste)
        if min(weights) < 0 or not np.isclose(sum(weights), 1.0):
            raise ValueError(f"ShopConfig purchase weights w_* must be >= 0 and sum to 1, got {weights}.")
        if self.n_items < 3 * self.n_categories:
            raise ValueError("ShopConfig.n_items must be at least 3 * n_categories (chains of three items).")


PRESETS: dict[str, ShopConfig] = {
    # Seconds, for the test suite. >= 1,000 items so 999 negatives can be drawn.
    "ci": ShopConfig(n_users=400, n_casual_users=100, n_items=1_500, n_categories=12, p_buy=0.5),
    # The notebooks' default: clear model differences, the whole course on 2 CPU cores.
    "course": ShopConfig(),
    # Table 1 of the paper after the >= 5 filter: 36,751 users, 83,274 items, 396,923 implicit,
    # 18,450 explicit events.
    "retailrocket": ShopConfig(
        n_users=76_000,
        n_casual_users=60_000,
        n_items=105_000,
        n_categories=400,
        sessions_mean=2.2,
        sessions_sigma=1.0,
        views_mean=2.85,
        p_buy=0.09,
        p_checkout=0.32,
    ),
}
# Recobell's size (Table 1 after the filter: 206,203 users, 118,293 items, 2,285,261 implicit,
# 52,786 explicit events, 2 months) with casual visitors up to ~14.5M raw events, otherwise the
# RetailRocket shop's behaviour: for measuring memory and speed at that size (benchmarks/).
PRESETS["recobell"] = replace(
    PRESETS["retailrocket"],
    n_users=438_000,
    n_casual_users=4_600_000,
    n_items=120_000,
    p_buy=0.046,
    days=61.0,
)


def shop_config(scale: str | ShopConfig) -> ShopConfig:
    """Resolve a preset name (or pass a ShopConfig through)."""
    if isinstance(scale, ShopConfig):
        return scale
    if scale not in PRESETS:
        raise ValueError(f"unknown synthetic scale {scale!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[scale]


@dataclass
class SyntheticShop:
    """The generated shop: its events (RetailRocket schema) and the ground truth behind them.

    Item arrays are indexed by the generator's item index (0..n_items-1), user arrays by the
    generator's user index; `item_raw` / `user_raw` give the ids written to events.csv.
    """

    config: ShopConfig
    seed: int
    item_raw: np.ndarray  # int64[n_items]
    item_category: np.ndarray  # int64[n_items]
    item_popularity: np.ndarray  # float64[n_items], sums to 1 inside each category
    item_next: np.ndarray  # int64[n_items], chain successor
    user_raw: np.ndarray  # int64[n_users]
    taste: np.ndarray  # float64[n_users, n_categories], long-term taste
    shifted_taste: np.ndarray  # float64[n_users, n_categories], taste after the shift (= taste if none)
    shift_time: np.ndarray  # datetime64[ms][n_users], NaT for stable users
    session_user: np.ndarray  # int64[n_sessions]
    session_intent: np.ndarray  # int64[n_sessions]
    session_start: np.ndarray  # datetime64[ms][n_sessions]
    view_ptr: np.ndarray  # int64[n_sessions + 1], CSR pointers into view_item
    view_item: np.ndarray  # int64[n_views]
    decision_session: np.ndarray  # int64[n_decisions]
    decision_item: np.ndarray  # int64[n_decisions]
    decision_time: np.ndarray  # datetime64[ms][n_decisions], time of the cart
    checkout_time: np.ndarray  # datetime64[ms][n_decisions], NaT if no transaction
    events: pd.DataFrame  # RetailRocket events.csv columns

    # ----------------------------------------------------------------- ground truth queries
    @property
    def interest_shift_users(self) -> np.ndarray:
        """Raw ids of the users whose taste shifts in their last sessions."""
        return self.user_raw[~np.isnat(self.shift_time)]

    def user_shift_time(self, user_raw: np.ndarray) -> np.ndarray:
        """datetime64[ms][n]: when each user's taste shifts (NaT for users whose taste never does)."""
        return self.shift_time[self._user_index(np.asarray(user_raw))]

    def shifted_at(self, user_raw: np.ndarray, when: np.ndarray) -> np.ndarray:
        """bool[n]: whether each user's interest had already shifted at `when` (the ground truth)."""
        shift = self.user_shift_time(user_raw)
        return ~np.isnat(shift) & (np.asarray(when, dtype="datetime64[ms]") >= shift)

    def oracle_scores(
        self, user_raw: np.ndarray, target_time: np.ndarray, candidate_raw: np.ndarray
    ) -> np.ndarray:
        """True probability that each candidate is the user's explicit event at `target_time`.

        user_raw int64[n], target_time datetime64[ms][n] (the time of an explicit event of that
        user), candidate_raw int64[n, c] -> float64[n, c]. For a transaction the item already in
        the cart is certain (score 1 + p); otherwise p(j) of the module docstring.
        """
        user_index = self._user_index(np.asarray(user_raw))
        decision, is_checkout = self._decision_at(user_index, np.asarray(target_time, dtype="datetime64[ms]"))
        candidates = self._item_index(np.asarray(candidate_raw))
        session = self.decision_session[decision]
        scores = self._purchase_probability(session, candidates)
        pending = is_checkout[:, None] & (candidates == self.decision_item[decision][:, None])
        return scores + pending

    def _purchase_probability(self, session: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        c = self.config
        user = self.session_user[session]
        taste = np.where(self._shifted(session)[:, None], self.shifted_taste[user], self.taste[user])
        cat = self.item_category[candidates]
        pop = self.item_popularity[candidates]
        p = c.w_taste * np.take_along_axis(taste, cat, axis=1) * pop
        p += c.w_intent * (cat == self.session_intent[session][:, None]) * pop
        starts, ends = self.view_ptr[session], self.view_ptr[session + 1]
        last_view = self.view_item[ends - 1]
        p += c.w_complement * (candidates == self.item_next[last_view][:, None])
        lengths = ends - starts
        for offset in range(int(lengths.max())):
            has = offset < lengths
            weight = np.where(
                offset < lengths - 1,
                (1 - c.recency_decay) * c.recency_decay**offset,
                0.0,
            )
            weight = np.where(offset == lengths - 1, c.recency_decay**offset, weight)
            viewed = self.view_item[np.where(has, ends - 1 - offset, 0)]
            p += c.w_viewed * (has * weight)[:, None] * (candidates == viewed[:, None])
        return p

    def _shifted(self, session: np.ndarray) -> np.ndarray:
        shift = self.shift_time[self.session_user[session]]
        return ~np.isnat(shift) & (self.session_start[session] >= shift)

    def _user_index(self, raw: np.ndarray) -> np.ndarray:
        return _lookup(self.user_raw, raw, "user")

    def _item_index(self, raw: np.ndarray) -> np.ndarray:
        return _lookup(self.item_raw, raw, "item")

    def _decision_at(self, user_index: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decision_user = self.session_user[self.decision_session]
        keys = pd.MultiIndex.from_arrays([decision_user, self.decision_time.astype(np.int64)])
        checkout = ~np.isnat(self.checkout_time)
        keys_out = pd.MultiIndex.from_arrays(
            [decision_user[checkout], self.checkout_time[checkout].astype(np.int64)]
        )
        query = pd.MultiIndex.from_arrays([user_index, when.astype(np.int64)])
        at_cart = keys.get_indexer(query)
        at_checkout = np.flatnonzero(checkout)[np.maximum(keys_out.get_indexer(query), 0)]
        found_checkout = keys_out.get_indexer(query) >= 0
        if np.any((at_cart < 0) & ~found_checkout):
            raise ValueError("oracle_scores: some (user, time) pairs are not explicit events of this shop.")
        decision = np.where(at_cart >= 0, at_cart, at_checkout)
        return decision, (at_cart < 0) & found_checkout

    def canonical_events(self) -> pd.DataFrame:
        """The events as the canonical frame, in memory (what load_dataset("synthetic") reads back)."""
        frame = pd.DataFrame(
            {
                "user_id": self.events["visitorid"].to_numpy(),
                "item_id": self.events["itemid"].to_numpy(),
                "timestamp": self.events["timestamp"].to_numpy().astype("datetime64[ms]"),
                "event": self.events["event"].to_numpy(),
            }
        )
        category = pd.Series(self.item_category, index=self.item_raw)
        frame["category_id"] = category.reindex(frame["item_id"]).to_numpy()
        return finalize_events(
            frame,
            explicit_events=["addtocart", "transaction"],
            implicit_events=["view"],
            source="synthetic shop",
        )

    # ----------------------------------------------------------------- persistence
    def write(self, out_dir: str | Path) -> Path:
        """Write events.csv + item_properties_part1.csv (RetailRocket format) and config.json.

        The ground truth is not stored: it is a pure function of (config, seed), which `read`
        regenerates (faster than writing and reading hundreds of MB of taste vectors).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(self.events, out / "events.csv")
        properties = pd.DataFrame(
            {
                "timestamp": np.full(len(self.item_raw), START.astype(np.int64)),
                "itemid": self.item_raw,
                "property": "categoryid",
                "value": self.item_category.astype(str),
            }
        )
        _write_csv(properties, out / "item_properties_part1.csv")
        (out / "config.json").write_text(json.dumps({"seed": self.seed, **asdict(self.config)}, indent=1))
        return out

    @classmethod
    def read(cls, out_dir: str | Path) -> SyntheticShop:
        """The shop written by `write`, ground truth included, regenerated from its config and seed."""
        out = Path(out_dir)
        if not (out / "config.json").exists():
            raise FileNotFoundError(
                f"{out} holds no synthetic shop (config.json is missing); write one first."
            )
        meta = json.loads((out / "config.json").read_text())
        seed = meta.pop("seed")
        return generate_shop(ShopConfig(**meta), seed=seed)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Fast CSV in the unquoted style of the Kaggle RetailRocket files."""
    with open(path, "wb") as out:
        out.write((",".join(frame.columns) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), out, options)


def _lookup(table: np.ndarray, raw: np.ndarray, what: str) -> np.ndarray:
    order = np.argsort(table)
    pos = np.searchsorted(table, raw, sorter=order)
    pos = np.minimum(pos, len(table) - 1)
    index = order[pos]
    if np.any(table[index] != raw):
        raise ValueError(f"oracle_scores: unknown raw {what} id(s), e.g. {raw[table[index] != raw][:3]}.")
    return index


# --------------------------------------------------------------------- generation
def generate_shop(scale: str | ShopConfig = "course", seed: int = 0, **overrides) -> SyntheticShop:
    """Generate a shop deterministically from `seed` (a preset name or ShopConfig, plus overrides)."""
    config = replace(shop_config(scale), **overrides) if overrides else shop_config(scale)
    rng = np.random.default_rng(seed)
    c = config

    # Items: categories with long-tailed sizes, Zipf popularity inside each, chains A -> B -> C.
    category_share = rng.dirichlet(np.full(c.n_categories, 2.0))
    item_category = np.sort(rng.choice(c.n_categories, size=c.n_items, p=category_share))
    item_category[: c.n_categories * 3] = np.repeat(np.arange(c.n_categories), 3)  # >= 3 items each
    item_category = np.sort(item_category)
    cat_start = np.searchsorted(item_category, np.arange(c.n_categories + 1))
    rank_in_cat = np.empty(c.n_items)
    item_next = np.empty(c.n_items, dtype=np.int64)
    for cat in range(c.n_categories):  # a loop over categories, not events
        members = np.arange(cat_start[cat], cat_start[cat + 1])
        rank_in_cat[members] = rng.permutation(len(members)) + 1
        chain = rng.permutation(members)
        successors = np.roll(chain, -1)
        item_next[chain] = successors
    weight = rank_in_cat**-c.popularity_exponent
    cat_mass = np.bincount(item_category, weights=weight, minlength=c.n_categories)
    item_popularity = weight / cat_mass[item_category]
    # Items are sorted by category and popularity sums to 1 inside each, so the running sum puts
    # category k on (k, k + 1]: drawing from category k is one searchsorted of k + u.
    cum = np.cumsum(item_popularity)

    def draw_from(category: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(cum, category + rng.random(len(category)))
        return np.clip(idx, cat_start[category], cat_start[category + 1] - 1)

    # Users: taste, activity, interest shift.
    taste = _dirichlet_rows(rng, c.taste_concentration * c.n_categories * category_share, c.n_users)
    shifted = rng.random(c.n_users) < c.shift_fraction
    # favour categories the user ignored
    new_focus = _categorical_rows(rng, lambda rows: 1.0 - taste[rows] + 1e-9, c.n_users)
    shifted_taste = taste.copy()
    shifted_taste[shifted] = 0.2 * taste[shifted]
    shifted_taste[np.flatnonzero(shifted), new_focus[shifted]] += 0.8
    n_sessions = np.maximum(
        1,
        np.round(
            rng.lognormal(
                np.log(c.sessions_mean) - c.sessions_sigma**2 / 2,
                c.sessions_sigma,
                c.n_users,
            )
        ),
    ).astype(np.int64)

    # Sessions: sorted start times per user; intent from the current taste.
    session_user = np.repeat(np.arange(c.n_users), n_sessions)
    start_ms = rng.random(len(session_user)) * (c.days - 1.0) * MS_PER_DAY
    order = np.lexsort((start_ms, session_user))
    start_ms = start_ms[order]
    index_in_user = np.arange(len(session_user)) - np.repeat(np.cumsum(n_sessions) - n_sessions, n_sessions)
    first_shifted = np.ceil(n_sessions * (1 - c.shift_share)).astype(np.int64)
    first_shifted = np.minimum(first_shifted, n_sessions - 1)
    is_shifted = (
        shifted[session_user]
        & (index_in_user >= first_shifted[session_user])
        & (n_sessions[session_user] > 1)
    )
    session_start = (START + start_ms.astype(np.int64).astype("timedelta64[ms]")).astype("datetime64[ms]")
    shift_time = np.full(c.n_users, np.datetime64("NaT"), dtype="datetime64[ms]")
    shift_users = session_user[is_shifted]
    first = np.r_[True, shift_users[1:] != shift_users[:-1]][: len(shift_users)]  # none: shift_fraction 0
    shift_time[shift_users[first]] = session_start[is_shifted][first]

    def current_taste(sessions: np.ndarray) -> np.ndarray:
        user = session_user[sessions]
        return np.where(is_shifted[sessions, None], shifted_taste[user], taste[user])

    session_intent = _categorical_rows(rng, current_taste, len(session_user))

    # Views: a loop over positions inside sessions, vectorised over all sessions.
    n_views = 1 + rng.poisson(c.views_mean - 1.0, size=len(session_user))
    n_views = np.minimum(n_views, 60)
    views = np.zeros((len(session_user), n_views.max()), dtype=np.int64)
    views[:, 0] = draw_from(session_intent)
    for t in range(1, views.shape[1]):
        follow = rng.random(len(session_user)) < c.p_chain
        views[:, t] = np.where(follow, item_next[views[:, t - 1]], draw_from(session_intent))
    mask = np.arange(views.shape[1])[None, :] < n_views[:, None]
    view_item = views[mask]
    view_ptr = np.r_[0, np.cumsum(n_views)]
    gaps = rng.exponential(60_000.0, size=views.shape).cumsum(axis=1)
    view_time = (session_start[:, None] + gaps.astype(np.int64).astype("timedelta64[ms]"))[mask]

    # Decisions: one optional cart per session, drawn from the purchase mixture.
    buys = np.flatnonzero(rng.random(len(session_user)) < c.p_buy)
    component = rng.choice(4, size=len(buys), p=[c.w_viewed, c.w_complement, c.w_intent, c.w_taste])
    last = view_ptr[buys + 1] - 1
    offset = np.minimum(rng.geometric(1.0 - c.recency_decay, size=len(buys)) - 1, n_views[buys] - 1)
    taste_cat = _categorical_rows(rng, lambda rows: current_taste(buys[rows]), len(buys))
    decision_item = np.select(
        [component == 0, component == 1, component == 2],
        [
            view_item[last - offset],
            item_next[view_item[last]],
            draw_from(session_intent[buys]),
        ],
        draw_from(taste_cat),
    )
    last_view_time = view_time[last]
    decision_time = (
        last_view_time
        + rng.exponential(30_000.0, len(buys)).astype(np.int64).astype("timedelta64[ms]")
        + np.timedelta64(1, "ms")
    )
    checkout = rng.random(len(buys)) < c.p_checkout
    checkout_time = np.where(
        checkout,
        decision_time
        + rng.exponential(120_000.0, len(buys)).astype(np.int64).astype("timedelta64[ms]")
        + np.timedelta64(1, "ms"),
        np.datetime64("NaT"),
    ).astype("datetime64[ms]")

    n_visitors = c.n_users + c.n_casual_users
    user_raw = np.sort(rng.choice(max(1_500_000, 2 * n_visitors), size=n_visitors, replace=False))
    user_raw = rng.permutation(user_raw)
    item_raw = rng.choice(max(500_000, 4 * c.n_items), size=c.n_items, replace=False).astype(np.int64)

    # Casual visitors: 1-4 views each by global popularity; the >= 5 filter removes them.
    casual_n = rng.integers(1, 5, size=c.n_casual_users)
    casual_user = np.repeat(np.arange(c.n_users, c.n_users + c.n_casual_users), casual_n)
    casual_item = draw_from(rng.choice(c.n_categories, size=len(casual_user), p=category_share))
    casual_time = START + (rng.random(len(casual_user)) * c.days * MS_PER_DAY).astype(np.int64).astype(
        "timedelta64[ms]"
    )

    parts = [
        (
            session_user[np.repeat(np.arange(len(session_user)), n_views)],
            view_item,
            view_time,
            "view",
        ),
        (session_user[buys], decision_item, decision_time, "addtocart"),
        (
            session_user[buys][checkout],
            decision_item[checkout],
            checkout_time[checkout],
            "transaction",
        ),
        (casual_user, casual_item, casual_time, "view"),
    ]
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "timestamp": t.astype(np.int64),
                    "visitorid": user_raw[u],
                    "event": name,
                    "itemid": item_raw[i],
                }
            )
            for u, i, t, name in parts
        ],
        ignore_index=True,
    )
    transaction = events["event"].eq("transaction").to_numpy()
    events["transactionid"] = pd.array(np.where(transaction, np.cumsum(transaction), 0), dtype="Int64")
    events.loc[~transaction, "transactionid"] = pd.NA
    events = events.sort_values("timestamp", kind="stable", ignore_index=True)

    return SyntheticShop(
        config=config,
        seed=seed,
        item_raw=item_raw,
        item_category=item_category,
        item_popularity=item_popularity,
        item_next=item_next,
        user_raw=user_raw[: c.n_users],
        taste=taste,
        shifted_taste=shifted_taste,
        shift_time=shift_time,
        session_user=session_user,
        session_intent=session_intent,
        view_ptr=view_ptr,
        view_item=view_item,
        decision_session=buys,
        decision_item=decision_item,
        decision_time=decision_time,
        checkout_time=checkout_time,
        session_start=session_start,
        events=events,
    )


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray, n: int) -> np.ndarray:
    draws = rng.gamma(np.broadcast_to(alpha, (n, len(alpha))))
    draws += 1e-12
    return draws / draws.sum(axis=1, keepdims=True)


def _categorical_rows(
    rng: np.random.Generator, weights: Callable[[np.ndarray], np.ndarray], n: int, chunk: int = 16_384
) -> np.ndarray:
    """One category per row r < n of the matrix whose rows `weights(rows)` returns (float[len(rows),
    K], not necessarily normalised). Rows are built a chunk at a time, so a per-session taste
    matrix (sessions x categories, gigabytes at RetailRocket scale) never exists whole."""
    u = rng.random(n)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        cum = np.cumsum(weights(rows), axis=1)
        out[rows] = np.minimum((cum < (u[rows] * cum[:, -1])[:, None]).sum(axis=1), cum.shape[1] - 1)
    return out
