"""Ranking metrics for the leave-one-out protocol, as small pure functions.

Every test user has exactly one held-out positive. Its *rank* is the number of negatives that
score at least as high as it does, so ties count against the positive: a model that gives every
item the same score ranks the positive last (HR@10 = 0), never first.

    rank    = #{negatives j : score_j >= score_positive}
    HR@K    = mean(rank < K)
    NDCG@K  = mean(1 / log2(rank + 2) if rank < K else 0)

Worked example (3 users, K = 2): ranks [0, 1, 5] give HR@2 = 2/3 and
NDCG@2 = (1/log2(2) + 1/log2(3) + 0) / 3 = (1 + 0.6309) / 3 = 0.5436.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rank_of_positive(pos_scores: np.ndarray, neg_scores: np.ndarray) -> np.ndarray:
    """Ranks of the positives: pos_scores float[n], neg_scores float[n, m] -> int64[n] in [0, m].

    NaN scores are refused: a NaN would silently compare as "lower" and flatter the model.
    """
    pos_scores = np.asarray(pos_scores)
    neg_scores = np.asarray(neg_scores)
    if neg_scores.ndim != 2 or pos_scores.shape != (neg_scores.shape[0],):
        raise ValueError(
            f"rank_of_positive expects pos_scores[n] and neg_scores[n, m]; "
            f"got shapes {pos_scores.shape} and {neg_scores.shape}."
        )
    if np.isnan(pos_scores).any() or np.isnan(neg_scores).any():
        raise ValueError("rank_of_positive got NaN scores; fix the model before evaluating it.")
    return (neg_scores >= pos_scores[:, None]).sum(axis=1).astype(np.int64)


def _check(ranks: np.ndarray, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}.")
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or len(ranks) == 0:
        raise ValueError(f"ranks must be a non-empty 1-d array, got shape {ranks.shape}.")
    return ranks


def hits(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user hit indicator: float[n] with 1.0 where rank < k."""
    return (_check(ranks, k) < k).astype(np.float64)


def ndcg_gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k: float[n] with 1 / log2(rank + 2) where rank < k, else 0."""
    ranks = _check(ranks, k)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def hit_rate(ranks: np.ndarray, k: int = 10) -> float:
    """HR@k = mean(rank < k)."""
    return float(hits(ranks, k).mean())


def ndcg(ranks: np.ndarray, k: int = 10) -> float:
    """NDCG@k = mean(1 / log2(rank + 2) for rank < k, else 0) (one relevant item per user)."""
    return float(ndcg_gains(ranks, k).mean())


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """Percentile bootstrap CI of the mean of per-user values (e.g. `hits(ranks, 10)`)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-d array, got shape {values.shape}.")
    rng = np.random.default_rng(seed)
    means = _resampled_means(values, n_boot, rng)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Estimate(float(values.mean()), float(low), float(high))


def _bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """int[n_boot, n]: how often each of n users is drawn in each bootstrap resample.

    Multinomial counts instead of index draws: memory-light and fast; resampled means are counts @ x / n.
    """
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def _resampled_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    return _bootstrap_counts(len(values), n_boot, rng) @ values / len(values)


@dataclass(frozen=True)
class PairedComparison:
    """Model A minus model B on the same users: mean difference, its 95% CI, two-sided p-value."""

    difference: Estimate
    p_value: float
    n_users: int


def paired_comparison(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> PairedComparison:
    """Compare two models' per-user values (same users, same order) by a paired bootstrap.

    The p-value is from a paired sign-flip permutation test of mean(a - b) = 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_comparison needs two 1-d arrays of equal length; got {a.shape}, {b.shape}.")
    diff = a - b
    rng = np.random.default_rng(seed)
    estimate = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    signs = rng.choice([-1.0, 1.0], size=(n_boot, len(diff)))
    null_means = np.abs(signs @ diff / len(diff))
    p_value = (1.0 + np.sum(null_means >= abs(diff.mean()) - 1e-12)) / (n_boot + 1.0)
    return PairedComparison(estimate, float(p_value), len(diff))


def relative_gain(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """mean(a) / mean(b) - 1 (e.g. "NDCG 15% higher than MF") with a paired bootstrap 95% CI.

    a, b: per-user values of two models on the same users; users are resampled together.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(
            f"relative_gain needs two non-empty 1-d arrays of equal length; got {a.shape}, {b.shape}."
        )
    if b.mean() == 0:
        raise ValueError("relative_gain: the reference model's mean is 0, so a relative gain is undefined.")
    rng = np.random.default_rng(seed)
    counts = _bootstrap_counts(len(a), n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (counts @ a) / (counts @ b) - 1.0
    low, high = np.nanquantile(ratios, [0.025, 0.975])
    return Estimate(float(a.mean() / b.mean() - 1.0), float(low), float(high))
