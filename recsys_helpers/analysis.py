"""Descriptive statistics of an interaction log: long tails, the funnel, sessions, categories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data.preprocess import Interactions


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
