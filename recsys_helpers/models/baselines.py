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
from .gate import LogisticGate, gate_features, user_totals


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


# Events of the window the gate reads when fitted (evaluation passes its models the last 50).
GATE_WINDOW = 50


class GatedFirst(SeenFirst):
    """A stronger composite floor: a logistic regression on the gate's simple features (`gate`:
    the user's past repeat rate, session length, last event kind, time since the last event)
    predicts "the next purchase is an item the user touched", and decides per user:

        score(u, .) = SeenFirst's order (touched items first, by recency)   if P(repeat | u) >= 0.5
                    = the wrapped model's order (touched items interleaved)   otherwise

    `make_model("gated_first+gru4rec")`. The regression is fit on VALIDATION targets only
    (`fit_gate`, label: the target is a repeat), never on test targets; the tested model
    (`experiments.train`'s final fit) keeps the gate fit on the selection split's validation
    targets and reads its user features from its own fit's training rows. 0.5 is the Bayes
    decision for "is the target touched", not a threshold tuned for HR@10. Learned: as SeenFirst,
    plus gate_ (a `LogisticGate`) and user_stats_ float32[n_users, 3] (`gate.user_totals`).
    """

    reads_gaps = True

    def __init__(self, inner: Recommender) -> None:
        super().__init__(inner)
        self.name = f"gated_first+{inner.name}"

    def fit(self, split: Split) -> History:
        """Fit the wrapped model, remember split.train and fit the gate on split.valid."""
        history = self.inner.fit(split)
        self.remember(split).fit_gate(split)
        return history

    def remember(self, split: Split) -> GatedFirst:
        super().remember(split)
        self.user_stats_ = user_totals(split.events, split.is_train, split.n_users, split.n_items)
        return self

    def fit_gate(self, split: Split) -> GatedFirst:
        """Fit the logistic gate on the validation targets of `split` (the selection split); -> self."""
        if len(split.valid) == 0:
            raise ValueError(
                f"{self.name} fits its gate on validation targets and this split has none (split.final()?): "
                "pass the selection split (leave_one_out's), e.g. model.fit_gate(split) before split.final()."
            )
        valid = split.valid
        stats = user_totals(split.events, split.is_train, split.n_users, split.n_items)[valid.user]
        items, kinds = split.windows("valid", GATE_WINDOW, same_session=self.session_based)
        gaps = split.gaps("valid", GATE_WINDOW, same_session=self.session_based)
        self.gate_ = LogisticGate().fit(gate_features(stats, items, kinds, gaps), valid.repeat)
        return self

    def repeat_probability(self, users: np.ndarray, sequences: np.ndarray, kinds, gaps) -> np.ndarray:
        """P(repeat) float64[n] of each request (the gate's estimate)."""
        stats = self.user_stats_[np.asarray(users)]
        return self.gate_.predict_proba(gate_features(stats, sequences, kinds, gaps))

    def score(
        self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray, kinds=None, gaps=None
    ) -> np.ndarray:
        """-> float32[n, c]: per user, SeenFirst's order when the gate says repeat, else the inner order."""
        check_score_inputs(users, sequences, candidates, kinds, gaps)
        if kinds is None or gaps is None:
            raise ValueError(
                f"{self.name} reads the kinds and time gaps of the window: pass kinds= and gaps= "
                "(split.windows(...) and split.gaps(...); evaluation.evaluate passes them)."
            )
        scores = self._inner_scores(users, sequences, candidates, kinds, gaps)
        first = self.repeat_probability(users, sequences, kinds, gaps) >= 0.5
        return np.where(first[:, None], self.touched_first(users, candidates, scores), scores)
