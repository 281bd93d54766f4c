"""Descriptive statistics of an interaction log (long tails, the funnel, sessions, categories), what
the synthetic shop planted in its log (from the generator's ground truth), and analyses of trained
models (what each stage of a two-stage head ranks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import SyntheticShop
from .data.preprocess import Interactions
from .evaluation import Evaluation, model_inputs
from .metrics import rank_of_positive
from .protocol import Split


def activity(data: Interactions) -> dict[str, pd.Series]:
    """Events per user and per item (the long tails), as Series indexed by dense id."""
    events = data.events
    return {"user": events.groupby("user").size(), "item": events.groupby("item").size()}


def funnel(data: Interactions) -> pd.DataFrame:
    """Events and users per event type, implicit types first; `share_of_users` = users with one / all."""
    events = data.events
    explicit = events.groupby("event", observed=True)["explicit"].first()
    table = events.groupby("event", observed=True).agg(events=("user", "size"), users=("user", "nunique"))
    table = table.loc[explicit.sort_values(kind="stable").index]
    table["share_of_users"] = table["users"] / data.n_users
    return table


def view_before_buy(data: Interactions) -> float:
    """Share of explicit events whose item the same user viewed (implicitly) earlier."""
    events = data.events
    key = events["user"].to_numpy() * (data.n_items + 1) + events["item"].to_numpy()
    explicit = events["explicit"].to_numpy()
    first_implicit = pd.Series(np.arange(len(events))[~explicit], index=key[~explicit]).groupby(level=0).min()
    earlier = first_implicit.reindex(key[explicit]).to_numpy() < np.arange(len(events))[explicit]
    return float(np.mean(earlier)) if explicit.any() else float("nan")


def sessions(data: Interactions) -> pd.DataFrame:
    """One row per session: its user, number of events, duration, and whether it has an explicit event."""
    events = data.events
    grouped = events.groupby("session")
    return pd.DataFrame(
        {
            "user": grouped["user"].first(),
            "events": grouped.size(),
            "minutes": (grouped["timestamp"].max() - grouped["timestamp"].min()).dt.total_seconds() / 60,
            "start": grouped["timestamp"].min(),
            "explicit": grouped["explicit"].any(),
        }
    )


def gaps_between_sessions(data: Interactions) -> pd.Series:
    """Hours between consecutive sessions of the same user."""
    table = sessions(data)
    same_user = table["user"].to_numpy()[1:] == table["user"].to_numpy()[:-1]
    hours = np.diff(table["start"].to_numpy()).astype("timedelta64[s]").astype(float) / 3600
    return pd.Series(hours[same_user], name="hours")


def shop_mechanisms(shop: SyntheticShop) -> dict[str, np.ndarray]:
    """What the generator planted, measured on the log it wrote (all active users, before the
    >= 5-interactions filter), one array per mechanism:

    * "top_taste": float[n_users], each user's share of taste in their favourite category;
    * "intent_change": bool[n_pairs], for consecutive sessions of a user, whether the second
      browses another category than the first (short-term intent is not long-term taste);
    * "chain": bool[n_view_pairs], for consecutive views in a session, whether the second is the
      chain successor of the first (item-to-item patterns);
    * "taste_overlap": float[n_shifted], for each user whose interest shifts, sum_c min(before,
      after) of the two tastes (1: no change, 0: disjoint categories);
    * "cart_origin": str[n_carts], where the user first viewed each cart's item: "this session",
      "an earlier session" or "never viewed" (repeat purchases);
    * "funnel": int[3], sessions, carts, transactions.
    """
    user, intent = shop.session_user, shop.session_intent
    same_user = user[1:] == user[:-1]
    view_session = np.repeat(np.arange(len(user)), np.diff(shop.view_ptr))
    same_session = view_session[1:] == view_session[:-1]
    views = shop.view_item
    shifted = ~np.isnat(shop.shift_time)
    return {
        "top_taste": shop.taste.max(axis=1),
        "intent_change": (intent[1:] != intent[:-1])[same_user],
        "chain": (views[1:] == shop.item_next[views[:-1]])[same_session],
        "taste_overlap": np.minimum(shop.taste[shifted], shop.shifted_taste[shifted]).sum(axis=1),
        "cart_origin": _cart_origin(shop),
        "funnel": np.array([len(user), len(shop.decision_item), int((~np.isnat(shop.checkout_time)).sum())]),
    }


def _cart_origin(shop: SyntheticShop) -> np.ndarray:
    """Per cart: "this session" when the user first viewed its item in the cart's session, "an
    earlier session" when in one of their earlier sessions, else "never viewed"."""
    n_items = len(shop.item_raw)
    view_session = np.repeat(np.arange(len(shop.session_user)), np.diff(shop.view_ptr))
    view_key = shop.session_user[view_session] * n_items + shop.view_item
    first_session = pd.Series(view_session).groupby(view_key).min()
    session = shop.decision_session
    first = first_session.reindex(shop.session_user[session] * n_items + shop.decision_item).to_numpy()
    return np.select(
        [first == session, first < session], ["this session", "an earlier session"], "never viewed"
    )


def shop_knobs(shop: SyntheticShop) -> pd.DataFrame:
    """Each mechanism's knob (`ShopConfig`) beside what it produced in the log (`shop_mechanisms`)."""
    c, m = shop.config, shop_mechanisms(shop)
    sessions, carts, transactions = m["funnel"]
    origin = pd.Series(m["cart_origin"]).value_counts(normalize=True)
    rows = [
        ("long-term taste", f"taste_concentration = {c.taste_concentration}",
         "median share of a user's favourite category", np.median(m["top_taste"])),
        ("session intent", f"{c.n_categories} categories",
         "consecutive sessions of a user in different categories", m["intent_change"].mean()),
        ("item chains", f"p_chain = {c.p_chain}",
         "consecutive views that follow the chain", m["chain"].mean()),
        ("interest shift", f"shift_fraction = {c.shift_fraction}",
         "users whose taste shifts", float(np.mean(~np.isnat(shop.shift_time)))),
        ("interest shift", f"shift_share = {c.shift_share}",
         "median taste overlap, before vs after the shift", np.median(m["taste_overlap"])),
        ("repeat purchases", f"w_viewed = {c.w_viewed}",
         "carts of an item first viewed in the same session", origin.get("this session", 0.0)),
        ("repeat purchases", "(any component)",
         "carts of an item first viewed in an earlier session", origin.get("an earlier session", 0.0)),
        ("funnel", f"p_buy = {c.p_buy}", "sessions that end with a cart", carts / sessions),
        ("funnel", f"p_checkout = {c.p_checkout}", "carts that become a transaction", transactions / carts),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["mechanism", "knob", "measured in the log", "value"]).round(3)


def interest_shift(
    split: Split,
    which: str = "test",
    recent: int = 5,
    min_history: int = 5,
    threshold: float = 0.5,
    column: str = "category_id",
) -> pd.DataFrame:
    """How far each target user's recent interest has moved from their history, by item category.

    For the target of each user, `recent` = their last `recent` events before it and `history` =
    every earlier event. shift = total-variation distance between the category distributions of
    the two, 0.5 * sum_c |p_recent(c) - p_history(c)|: 0 when the recent events look like the past,
    1 when they fall in categories the user never touched. Users whose history has fewer than
    `min_history` events get NaN (too little past to shift from) and `shifted` False; they are
    counted, not dropped. `shifted` = shift >= threshold. Unknown categories (-1) count as one more
    category. One row per target, in target order. The defaults are chosen a priori, not tuned:
    recent = the CNN's window L = 5, min_history = the paper's 5-interaction filter, threshold =
    half of the recent mass in categories the history does not explain.
    """
    if not split.data.has_categories(column):
        raise ValueError(
            f"no item has a {column!r}: interest shift is measured over categories. Load the "
            "dataset with its category file (RetailRocket: item_properties*.csv; Recobell: product file)."
        )
    categories = split.data.item_categories(column)
    targets = split.targets(which)
    events = split.events
    users = events["user"].to_numpy()
    target_of_user = np.full(split.n_users, -1)
    target_of_user[targets.user] = np.arange(len(targets))
    owner = target_of_user[users]
    rows = np.arange(len(events))
    target_row = np.where(owner >= 0, targets.row[np.maximum(owner, 0)], -1)
    before = rows < target_row
    is_recent = rows >= target_row - recent
    codes, category_values = pd.factorize(categories[events["item"].to_numpy()])
    counts = pd.crosstab([owner[before], is_recent[before]], codes[before], dropna=False).reindex(
        pd.MultiIndex.from_product([range(len(targets)), [False, True]]), fill_value=0
    )
    history = counts.xs(False, level=1).to_numpy(dtype=float)
    latest = counts.xs(True, level=1).to_numpy(dtype=float)
    n_history = history.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = 0.5 * np.abs(latest / latest.sum(1, keepdims=True) - history / n_history[:, None]).sum(1)
    # Rounded so that a distance of exactly the threshold (0.5 is common: fractions of 5 recent
    # events) does not flip with the summation order of the NumPy version (last bits).
    distance = np.round(distance, 12)
    distance[n_history < min_history] = np.nan
    return pd.DataFrame(
        {
            "user": targets.user,
            "history_events": n_history.astype(int),
            "history_top_category": category_values[history.argmax(axis=1)],
            "recent_top_category": category_values[latest.argmax(axis=1)],
            "shift": distance,
            "shifted": distance >= threshold,
        }
    )


def shift_agreement(
    split: Split,
    truth: np.ndarray,
    recents: tuple[int, ...] = (3, 5, 8),
    thresholds: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9),
) -> pd.DataFrame:
    """How well `interest_shift` finds the test users whose taste truly moved (`truth`, a bool per
    test target, e.g. the synthetic shop's `shifted_at`), for each window and threshold: users
    flagged, precision, recall and the base rate among users with enough history."""
    rows = []
    for recent in recents:
        for threshold in thresholds:
            found = interest_shift(split, recent=recent, threshold=threshold)
            known, flagged = found["shift"].notna().to_numpy(), found["shifted"].to_numpy()
            rows.append(
                {
                    "recent events": recent,
                    "threshold": threshold,
                    "flagged": int(flagged.sum()),
                    "precision": truth[flagged].mean() if flagged.any() else np.nan,
                    "recall": truth[flagged].sum() / truth[known].sum() if truth[known].any() else np.nan,
                    "base rate (known history)": truth[known].mean(),
                }
            )
    return pd.DataFrame(rows).set_index(["recent events", "threshold"])


def case_study_target(
    split: Split,
    shifted: np.ndarray,
    shift: pd.DataFrame | None,
    ranks: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[int, str]:
    """The case study's user, by a rule fixed in advance.

    Among test targets flagged in `shifted` whose item is in the category that dominates the
    user's last events and not in the one that dominates their history (`shift`, from
    `interest_shift`), the user with the longest history. When no target qualifies, or the log
    has no categories (`shift` None), the rule falls back to the flagged (else any) test user with
    the longest history.

    With `ranks` (two models' full ranks of every test target, e.g. the proposed model's and MF's),
    the rule keeps only *new* targets (an item the user never touched before: a repeat target is
    found by every model and separates nothing) and, instead of the longest history, takes the one
    where the two models disagree most, |log r_a - log r_b| (ties: the longest history). It never
    asks which of the two ranks better. Returns (target index, the rule that chose it, in words).
    """
    targets = split.test
    earlier = targets.row - np.searchsorted(split.events["user"].to_numpy(), targets.user)  # events before
    eligible = np.zeros(len(targets), dtype=bool)
    if shift is not None:
        item_category = split.data.item_categories()[targets.item]
        eligible = (
            shifted
            & (item_category == shift["recent_top_category"].to_numpy())
            & (item_category != shift["history_top_category"].to_numpy())
        )
    rule = "shift user whose purchase is in their recent category, not their history's"
    if ranks is not None:
        eligible &= ~targets.repeat
    if not eligible.any():
        eligible = shifted if shifted.any() else np.ones(len(targets), dtype=bool)
        rule = "shift user" if shifted.any() else "test user"
    if ranks is None:
        return int(
            np.flatnonzero(eligible)[np.argmax(earlier[eligible])]
        ), f"the {rule} with the longest history"
    if (eligible & ~targets.repeat).any():
        eligible &= ~targets.repeat
        rule = rule.replace("purchase", "new purchase") if "purchase" in rule else f"{rule} with a new target"
    disagreement = np.abs(np.log(np.asarray(ranks[0]) + 1.0) - np.log(np.asarray(ranks[1]) + 1.0))
    order = np.lexsort((-earlier, -disagreement))  # most disagreement first, then the longest history
    chosen = order[eligible[order]][0]
    return int(chosen), f"the {rule}; of those, the one on whom the two models disagree most"


def stage_logits(model, split: Split, which: str = "test", batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A two-stage model's (implicit, explicit) logits float32[n, 1 + negatives] for the
    candidates of `which` (the target first, as in `evaluate`)."""
    from .models.neural import network_inputs  # TensorFlow only when needed

    targets = split.targets(which)
    users, sequences, kinds = model_inputs(model, split, which)
    window = model.window_inputs(sequences, kinds)
    logits = {"implicit": [], "explicit": []}
    for start in range(0, len(users), batch):
        part = slice(start, start + batch)
        inputs = {"user": users[part], "items": targets.candidates[part]} | {
            k: v[part] for k, v in window.items()
        }
        inputs = {name: np.asarray(values, dtype=np.int32) for name, values in inputs.items()}
        out = model.network_(network_inputs(model.network_, inputs), training=False)
        for stage, parts in logits.items():
            parts.append(np.asarray(out[stage]))
    return np.concatenate(logits["implicit"]), np.concatenate(logits["explicit"])


def stage_evaluations(model, split: Split, which: str = "test", batch: int = 256) -> dict[str, Evaluation]:
    """A two-stage model's candidates of `which` ranked three ways: by the implicit stage alone
    (sigma(z_imp)), by the explicit stage alone (sigma(z_exp)), and by their product, the model's
    own ranking. Same candidates as `evaluate`; sampled ranking only."""
    targets = split.targets(which)
    implicit, explicit = stage_logits(model, split, which, batch)
    rules = {
        "implicit only": implicit,
        "explicit only": explicit,
        "product (the model's ranking)": -np.logaddexp(0.0, -implicit) - np.logaddexp(0.0, -explicit),
    }
    ranks = {rule: rank_of_positive(scores[:, 0], scores[:, 1:]) for rule, scores in rules.items()}
    return {rule: Evaluation(r, repeat=targets.repeat) for rule, r in ranks.items()}


def calibration(predicted: np.ndarray, observed: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """How well a predicted probability matches what happened: the requests sorted by `predicted`
    and cut into `bins` groups of (nearly) equal size (equal counts, not equal widths: a gate's
    predictions often crowd into a narrow range), one row per group with its mean prediction, the
    observed rate of `observed` (bool), its 95% Wilson interval (low, high) and the count n.
    A calibrated predictor has observed ~ predicted in every row."""
    predicted, observed = np.asarray(predicted, dtype=np.float64), np.asarray(observed, dtype=bool)
    if predicted.shape != observed.shape or predicted.ndim != 1 or len(predicted) < bins or bins < 1:
        raise ValueError(
            f"calibration needs two 1-d arrays of one length >= bins ({bins}); got shapes "
            f"{predicted.shape} and {observed.shape}."
        )
    rows = []
    for group in np.array_split(np.argsort(predicted, kind="stable"), bins):
        n, rate = len(group), observed[group].mean()
        z = 1.959964
        centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2))
        rows.append({"predicted": predicted[group].mean(), "observed": rate,
                     "low": centre - half, "high": centre + half, "n": n})  # fmt: skip
    return pd.DataFrame(rows)
