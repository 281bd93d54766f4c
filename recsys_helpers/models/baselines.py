"""Sanity floors the paper lacks: every learned model must be shown against them.

Popularity scores an item by its number of training interactions. RecentlyViewed ranks the
user's own recent items first (most recent highest), then popular items: it measures how much
of the task is "has the user already looked at this item?", the protocol's trap (DESIGN.md).
"""

from __future__ import annotations

import time

import numpy as np

from ..data.preprocess import PADDING_ITEM
from ..protocol import Split
from .base import History, Recommender, check_score_inputs


class Popularity(Recommender):
    """score(u, j) = number of training interactions with item j (any event type, repeats counted).

    Learned: item_counts_ float32[n_items + 1] (row 0, the padding item, is 0).
    """

    name = "popularity"

    def fit(self, split: Split) -> History:
        start = time.perf_counter()
        counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1)
        self.item_counts_ = counts.astype(np.float32)
        return History(seconds=[time.perf_counter() - start])

    def score(self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """-> float32[n, c]: the candidates' training counts (the same for every user)."""
        check_score_inputs(users, sequences, candidates)
        return self.item_counts_[np.asarray(candidates)]


class RecentlyViewed(Popularity):
    """The user's own items first, the most recent highest; then the rest by popularity.

    For a sequence s[0..L-1] (oldest first, 0 = padding) and a candidate j:

        score(u, j) = 1 + t                         if j occurs in s, t = column of its LAST occurrence
                    = count(j) / (max count + 1)    otherwise, which is < 1

    so every seen item outranks every unseen one. Uses every item it is given (evaluation passes
    the last 50). Learned: item_counts_, as Popularity.
    """

    name = "recently_viewed"

    def score(self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """-> float32[n, c], vectorised over (user, candidate) pairs, one pass per sequence column."""
        check_score_inputs(users, sequences, candidates)
        sequences, candidates = np.asarray(sequences), np.asarray(candidates)
        scores = self.item_counts_[candidates] / (self.item_counts_.max() + 1)
        for t in range(sequences.shape[1]):  # oldest to newest: a later occurrence overwrites
            item = sequences[:, t, None]
            scores[(candidates == item) & (item != PADDING_ITEM)] = 1 + t
        return scores
