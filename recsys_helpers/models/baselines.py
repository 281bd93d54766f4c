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

    def score(
        self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray, kinds=None
    ) -> np.ndarray:
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

    def score(
        self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray, kinds=None
    ) -> np.ndarray:
        """-> float32[n, c], vectorised over (user, candidate) pairs, one pass per sequence column."""
        check_score_inputs(users, sequences, candidates)
        sequences, candidates = np.asarray(sequences), np.asarray(candidates)
        scores = self.item_counts_[candidates] / (self.item_counts_.max() + 1)
        for t in range(sequences.shape[1]):  # oldest to newest: a later occurrence overwrites
            item = sequences[:, t, None]
            scores[(candidates == item) & (item != PADDING_ITEM)] = 1 + t
        return scores


class SeenFirst(Recommender):
    """A composite floor: the user's touched items first, the most recent highest (as
    RecentlyViewed), then the wrapped model's order for the rest. `make_model("seen_first+caser")`.

        score(u, j) = max_c inner(u, c) + 1 + recency(u, j)   if u touched j in training
                    = inner(u, j)                             otherwise

    recency(u, j) in 0..k-1 orders the user's k touched items by their last event (most recent
    k-1). "Touched" means any event in the fit's training rows: a split's selection fit holds the
    events before each user's validation target, its final fit every event before the test target
    (`protocol.Split.final`), so the floor always sees exactly the history before the target it
    scores, the whole of it (RecentlyViewed reads the last 50 events it is given). A learned copy
    path is only worth its weights if it beats this. Learned: the inner model's state, and
    touched_ (sorted keys user * (n_items + 1) + item) with recency_ float32[len(touched_)].
    """

    def __init__(self, inner: Recommender) -> None:
        self.inner = inner
        self.name = f"seen_first+{inner.name}"
        self.session_based = getattr(inner, "session_based", False)

    @property
    def config(self):
        return self.inner.config

    def fit(self, split: Split) -> History:
        history = self.inner.fit(split)
        self.remember(split)
        return history

    def remember(self, split: Split) -> SeenFirst:
        """Record the touched items of split.train (the inner model is already fitted); -> self."""
        train = split.train
        self.n_items_ = split.n_items
        keys = train["user"].to_numpy() * (split.n_items + 1) + train["item"].to_numpy()
        # the last event of each (user, item) pair: unique on the reversed rows (rows are in time order)
        reversed_keys = keys[::-1]
        touched, first_reversed = np.unique(reversed_keys, return_index=True)
        last_row = len(keys) - 1 - first_reversed
        user = touched // (split.n_items + 1)
        order = np.lexsort((last_row, user))  # per user, oldest last event first
        rank = np.empty(len(order), dtype=np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(user[order])) + 1]
        rank[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        self.touched_, self.recency_ = touched, rank.astype(np.float32)
        return self

    @property
    def reads_gaps(self) -> bool:
        return self.inner.reads_gaps

    def score(
        self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray, kinds=None, gaps=None
    ) -> np.ndarray:
        """-> float32[n, c]: touched candidates above all others, by recency; the rest as the inner model."""
        return self.touched_first(
            users, candidates, self._inner_scores(users, sequences, candidates, kinds, gaps)
        )

    def _inner_scores(self, users, sequences, candidates, kinds, gaps) -> np.ndarray:
        extra = {"gaps": gaps} if self.inner.reads_gaps else {}
        return np.asarray(self.inner.score(users, sequences, candidates, kinds, **extra), dtype=np.float32)

    def touched_first(self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The inner model's scores float32[n, c] with the users' touched candidates lifted above
        all others, by recency (the class docstring's formula)."""
        if len(self.touched_) == 0:
            return scores
        keys = np.asarray(users, dtype=np.int64)[:, None] * (self.n_items_ + 1) + np.asarray(candidates)
        at = np.minimum(np.searchsorted(self.touched_, keys), len(self.touched_) - 1)
        top = scores.max(axis=1, keepdims=True) + 1
        return np.where(self.touched_[at] == keys, top + self.recency_[at], scores)
