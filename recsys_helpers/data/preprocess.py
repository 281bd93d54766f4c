"""From the canonical event frame to model-ready interactions: filter, dense ids, sessions, Table 1."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .schema import CANONICAL_COLUMNS, DataError, require_columns

PADDING_ITEM = 0  # item index 0 pads short sequences; real items are 1..n_items


@dataclass
class Interactions:
    """Events with dense ids, sorted by (user, time).

    events columns: user (0..n_users-1), item (1..n_items), timestamp, event, explicit, session
    (a global session index: a new session starts after `session_gap` of inactivity), plus the
    optional category columns. `user_ids[u]` / `item_ids[i]` map dense ids back to raw ids
    (`item_ids[0]` is -1, the padding item). `report` counts everything preprocessing removed.
    """

    events: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    report: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of real items (dense ids 1..n_items; 0 is padding)."""
        return len(self.item_ids) - 1

    def has_categories(self, column: str = "category_id") -> bool:
        """Whether any item has a known category (many click logs have none)."""
        return column in self.events.columns and bool(self.events[column].notna().any())

    def item_categories(self, column: str = "category_id") -> np.ndarray:
        """Raw category of every dense item id: int64[n_items + 1], -1 where unknown."""
        out = np.full(self.n_items + 1, -1, dtype=np.int64)
        if column in self.events.columns:
            known = self.events[["item", column]].dropna().drop_duplicates("item")
            out[known["item"].to_numpy()] = known[column].to_numpy(dtype=np.int64)
        return out


def preprocess(
    events: pd.DataFrame,
    *,
    min_interactions: int = 5,
    drop_duplicates: bool = True,
    session_gap: str = "30min",
) -> Interactions:
    """Keep users with >= `min_interactions` events (implicit + explicit, as in the paper),
    give users and items dense ids, and number sessions.

    Exact duplicate rows are removed when `drop_duplicates` (the count is in `report`).
    """
    require_columns(events, CANONICAL_COLUMNS, "preprocess(events)")
    if min_interactions < 1:
        raise ValueError(f"min_interactions must be >= 1, got {min_interactions}.")
    report = {"rows_in": len(events), "exact_duplicates_removed": 0}
    if drop_duplicates:
        duplicated = events.duplicated().to_numpy()
        report["exact_duplicates_removed"] = int(duplicated.sum())
        events = events[~duplicated]
    counts = events.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    keep = counts >= min_interactions
    report["users_removed"] = int(events["user_id"].nunique() - events["user_id"][keep].nunique())
    report["events_removed"] = int((~keep).sum())
    events = events[keep]
    if len(events) == 0:
        raise DataError(
            f"no user has >= {min_interactions} interactions, so nothing is left after filtering. "
            "Use more data or lower min_interactions."
        )
    events = events.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)
    user_codes, user_ids = pd.factorize(events["user_id"], sort=True)
    item_codes, item_ids = pd.factorize(events["item_id"], sort=True)
    out = pd.DataFrame(
        {
            "user": user_codes.astype(np.int64),
            "item": item_codes.astype(np.int64) + 1,
            "timestamp": events["timestamp"].to_numpy(),
            "event": events["event"].to_numpy(),
            "explicit": events["explicit"].to_numpy(),
        }
    )
    out["event"] = out["event"].astype(events["event"].dtype)
    gap = out["timestamp"].diff() > pd.Timedelta(session_gap)
    new_user = out["user"].diff() != 0
    out["session"] = np.cumsum((gap | new_user).to_numpy()) - 1
    for column in ("category_id", "top_category_id"):
        if column in events.columns:
            out[column] = events[column].to_numpy()
    report["rows_out"] = len(out)
    return Interactions(
        events=out,
        user_ids=np.asarray(user_ids, dtype=np.int64),
        item_ids=np.r_[-1, np.asarray(item_ids, dtype=np.int64)],
        report=report,
    )


def table1(data: Interactions) -> dict:
    """The paper's Table 1 row: users, items, implicit and explicit events, sparsity.

    sparsity = 1 - (distinct user-item pairs) / (users * items).
    """
    events = data.events
    pairs = len(np.unique(events["user"].to_numpy() * (data.n_items + 1) + events["item"].to_numpy()))
    n_explicit = int(events["explicit"].sum())
    return {
        "users": data.n_users,
        "items": data.n_items,
        "implicit": len(events) - n_explicit,
        "explicit": n_explicit,
        "sparsity": 1.0 - pairs / (data.n_users * data.n_items),
    }
