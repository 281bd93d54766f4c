"""The gate's simple features: will the user's next purchase be an item they touched before?

Both `repeat_explore` (its learned gate) and the `gated_first+<model>` floor (a logistic
regression, `LogisticGate`) read the same nine numbers per request, numpy only:

    from the user's events before the request (`user_repeat_stats` for training rows,
    `user_totals` for a fit's users at scoring time):
        repeat rate   (r + 1) / (n + 2): r of the user's n earlier explicit interactions were of
                      an item touched before them (Laplace-smoothed: a user without purchases gets 0.5)
        log(1 + n),  log(1 + distinct items touched)
    from the request's window (`window_features`: items, kinds and hours to the request, oldest first):
        has history  1 if the window holds any event
        log(1 + session length)   trailing events chained by gaps under SESSION_GAP_HOURS
        log(1 + hours since the last event)
        last event kind           implicit / explicit / purchase, one-hot (zeros when no event)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..protocol import explicit_interactions

# A session ends after 30 minutes without an event: preprocess's default `session_gap`. The gaps
# a model gets at scoring time carry no session ids, so the session is re-derived from them.
SESSION_GAP_HOURS = 0.5
N_USER_STATS = 3
N_GATE_FEATURES = 9


def interaction_flags(events: pd.DataFrame, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event of `events` (sorted by user, time): (explicit bool[n]: it opens an explicit
    interaction, `protocol.explicit_interactions`; repeat bool[n]: an explicit one whose item the
    user touched before; first bool[n]: the user's first touch of the item)."""
    keys = events["user"].to_numpy().astype(np.int64) * (n_items + 1) + events["item"].to_numpy()
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    explicit = np.zeros(len(keys), dtype=bool)
    explicit[explicit_interactions(events)[0]] = True
    return explicit, explicit & ~first, first


def user_repeat_stats(events: pd.DataFrame, rows: np.ndarray, n_items: int) -> np.ndarray:
    """(explicit interactions, repeat ones among them, distinct items touched) of each row's user
    over the user's events strictly before the row: float32[len(rows), 3]."""
    flags = np.column_stack(interaction_flags(events, n_items)).astype(np.float64)
    running = np.cumsum(flags, axis=0) - flags  # over all earlier rows, any user
    users = events["user"].to_numpy()
    user_start = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    start_of_row = user_start[np.searchsorted(user_start, np.arange(len(users)), side="right") - 1]
    rows = np.asarray(rows, dtype=np.int64)
    return (running[rows] - running[start_of_row[rows]]).astype(np.float32)


def user_totals(events: pd.DataFrame, is_train: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """The same three counts over each user's training rows (`events[is_train]`, every event
    before the user's next target): float32[n_users, 3]; what scoring reads for a fit's users."""
    flags = np.column_stack(interaction_flags(events, n_items))[is_train]
    users = events["user"].to_numpy()[is_train]
    return np.column_stack(
        [np.bincount(users, weights=flags[:, i], minlength=n_users) for i in (0, 1, 2)]
    ).astype(np.float32)


def window_features(items: np.ndarray, kinds: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The request's window -> float32[n, 6]: has history, log(1 + session length), log(1 + hours
    since the last event), last kind one-hot (implicit, explicit, purchase). items int[n, M],
    kinds int[n, M], gaps float[n, M] (hours to the request), oldest first, 0-padded left."""
    present = np.asarray(items) != 0
    gaps = np.asarray(gaps, dtype=np.float64)
    step = np.concatenate([gaps[:, :-1] - gaps[:, 1:], gaps[:, -1:]], axis=1)  # to the next event
    chained = np.cumprod(((step < SESSION_GAP_HOURS) & present)[:, ::-1], axis=1)[:, ::-1]
    last_kind = np.where(present[:, -1], np.asarray(kinds)[:, -1], 0)
    return np.column_stack(
        [
            present.any(axis=1),
            np.log1p(chained.sum(axis=1)),
            np.log1p(np.where(present[:, -1], gaps[:, -1], 0.0)),
            *(last_kind == k for k in (1, 2, 3)),
        ]
    ).astype(np.float32)


def gate_features(stats: np.ndarray, items: np.ndarray, kinds: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The nine features (module docstring): stats float[n, 3] (`user_repeat_stats` or rows of
    `user_totals`) and the window (see `window_features`) -> float32[n, 9]."""
    n_explicit, n_repeat, n_touched = np.asarray(stats, dtype=np.float64).T
    user = np.column_stack([(n_repeat + 1) / (n_explicit + 2), np.log1p(n_explicit), np.log1p(n_touched)])
    return np.hstack([user.astype(np.float32), window_features(items, kinds, gaps)])


class LogisticGate:
    """P(repeat) = sigmoid(w . standardise(x) + b), fit by Newton's method (IRLS) with an L2 penalty
    `l2` on w (not b), as scikit-learn's LogisticRegression(C=1 / l2) on standardised features.

    Learned: mean_, scale_ float64[F] (constant features get scale 1), coef_ float64[F], intercept_.
    """

    def __init__(self, l2: float = 1.0, iterations: int = 50) -> None:
        self.l2, self.iterations = l2, iterations

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticGate:
        """x float[n, F], y bool[n] -> self. Raises a ValueError when there is nothing to fit."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"LogisticGate.fit needs x[n, F] and y[n] with n >= 1; got shapes {x.shape} and {y.shape}."
            )
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        design = np.column_stack([(x - self.mean_) / self.scale_, np.ones(len(x))])
        penalty = np.diag(np.r_[np.full(x.shape[1], self.l2), 0.0])
        w = np.zeros(design.shape[1])
        for _ in range(self.iterations):
            p = 1 / (1 + np.exp(-design @ w))
            gradient = design.T @ (p - y) + penalty @ w
            hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w))
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        self.coef_, self.intercept_ = w[:-1], float(w[-1])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x float[n, F] -> P(repeat) float64[n]."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return 1 / (1 + np.exp(-z))
