"""Weighted matrix factorisation for implicit feedback (Hu, Koren & Volinsky 2008), by ALS.

The paper's "MF" baseline for long-term preference: "a weighted matrix factorization with
implicit data (also known as ... ALS for implicit feedback)". We use the `implicit` library's
ALS rather than hand-written solvers: it is fast, well tested and widely used.

    minimise  sum_{u,j} c_uj (p_uj - x_u . y_j)^2 + lambda (|x_u|^2 + |y_j|^2)
    p_uj = [u interacted with j in training],  c_uj = 1 + alpha * (number of interactions)

score(u, j) = x_u . y_j.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from ..protocol import Split
from .base import History, Recommender, check_score_inputs


class MF(Recommender):
    """ALS matrix factorisation. Learned: user_factors_ float32[n_users, f],
    item_factors_ float32[n_items + 1, f] (row 0, the padding item, is zero)."""

    name = "mf"

    def fit(self, split: Split) -> History:
        c = self.config
        train = split.train
        counts = sp.csr_matrix(
            (np.ones(len(train), dtype=np.float32), (train["user"].to_numpy(), train["item"].to_numpy() - 1)),
            shape=(split.n_users, split.n_items),
        )
        counts.sum_duplicates()
        confidence = counts.copy()
        confidence.data = 1.0 + c.als_alpha * confidence.data
        start = time.perf_counter()
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; nested BLAS threads slow it
            als = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.als_regularization,
                iterations=c.als_iterations,
                alpha=1.0,
                random_state=c.seed,
                num_threads=1,  # deterministic results for a given seed
            )
            als.fit(confidence, show_progress=bool(c.verbose))
        seconds = time.perf_counter() - start
        self.user_factors_ = np.asarray(als.user_factors, dtype=np.float32)
        self.item_factors_ = np.vstack([np.zeros((1, c.factors), np.float32), np.asarray(als.item_factors)])
        return History(seconds=[seconds])

    def score(self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        check_score_inputs(users, sequences, candidates)
        user_vectors = self.user_factors_[np.asarray(users)]
        return np.einsum("nf,ncf->nc", user_vectors, self.item_factors_[np.asarray(candidates)])
