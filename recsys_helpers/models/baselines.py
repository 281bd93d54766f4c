"""Sanity floors the paper lacks: every learned model must be shown against them.

Popularity scores an item by its number of training interactions. RecentlyViewed ranks the
user's own recent items first (most recent highest), then popular items: it measures how much
of the task is "has the user already looked at this item?", the protocol's trap (DESIGN.md).
"""

from __future__ import annotations

import time

import numpy as np

from ..protocol import Split
from .base import History, Recommender, check_score_inputs


class Popularity(Recommender):
    """score(u, j) = number of training interactions with item j (any event type)."""

    name = "popularity"

    def fit(self, split: Split) -> History:
        start = time.perf_counter()
        counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1)
        self.item_counts_ = counts.astype(np.float32)
        return History(seconds=[time.perf_counter() - start])

    def score(self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        check_score_inputs(users, sequences, candidates)
        return self.item_counts_[np.asarray(candidates)]


class RecentlyViewed(Popularity):
    """The user's own items first, by recency; then the rest by popularity.

    score(u, j) = 1 + (position of j's last occurrence in the sequence, 1 = oldest) if j occurs,
    else popularity(j) / (max popularity + 1), which is < 1. Uses every item it is given
    (evaluation passes the last 50).
    """

    name = "recently_viewed"

    def score(self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        check_score_inputs(users, sequences, candidates)
        sequences, candidates = np.asarray(sequences), np.asarray(candidates)
        scores = self.item_counts_[candidates] / (self.item_counts_.max() + 1.0)
        for position in range(sequences.shape[1]):  # a loop over <= 50 positions, not users
            item = sequences[:, position : position + 1]
            seen = (candidates == item) & (item > 0)
            scores = np.where(seen, 1.0 + position + 1.0, scores)
        return scores.astype(np.float32)
