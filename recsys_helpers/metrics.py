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
    """Percentile bootstrap CI of the mean of per-user values (e.g. `hits(ranks, 10)`).

    values: float[n_users] (one model seed) or float[n_seeds, n_users] (several seeds of one model
    on the same users). With several seeds the bootstrap has two levels, so that the interval
    holds both sources of noise: each resample draws the seeds with replacement, then the users
    (`seed_user_means`). The mean is the mean over seeds of the per-seed means.
    """
    values = _per_seed(values, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    means = seed_user_means(values, _bootstrap_counts(values.shape[1], n_boot, rng), rng)
    low, high = _interval(means, level)
    return Estimate(float(values.mean()), low, high)


def seed_user_means(values: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float[n_boot] resampled means of values float[n_seeds, n_users]: for each resample b, the
    seeds are drawn with replacement and the users are weighted by counts[b] (int[n_boot, n_users],
    how often each user was drawn; the same users for every seed, as they are the same targets):

        mean_b = mean over the drawn seeds s of (counts[b] @ values[s]) / n_users

    With one seed this is the plain (user) bootstrap of the mean.
    """
    per_seed = counts @ values.T / values.shape[1]  # [n_boot, n_seeds]
    drawn = rng.integers(0, values.shape[0], size=per_seed.shape)
    return np.take_along_axis(per_seed, drawn, axis=1).mean(axis=1)


def _per_seed(values: np.ndarray, what: str) -> np.ndarray:
    """float[n_seeds, n_users] from float[n_users] (one seed) or float[n_seeds, n_users]."""
    values = np.asarray(values, dtype=np.float64)
    values = values[None] if values.ndim == 1 else values
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"{what} needs per-user values float[n_users] or float[n_seeds, n_users], got shape "
            f"{values.shape}."
        )
    return values


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval as order statistics: the k-th smallest and k-th largest resampled
    mean, k = ceil((1 - level) / 2 * n_boot) (the 50th of 2,000 at 95%). So it excludes 0 exactly
    when `_p_value` < 1 - level (the interval and the p-value cannot disagree)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    k = max(1, int(np.ceil((1.0 - level) / 2.0 * len(means) - 1e-9)))
    ordered = np.sort(means)
    return float(ordered[k - 1]), float(ordered[-k])


def _p_value(means: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the mean is 0": 2 x the smaller share of resampled means on
    either side of 0 (at most 1), the smallest 1 - level at which the interval excludes 0. It
    reads 0 when no resample crossed 0 (p < 1 / n_boot)."""
    return float(min(1.0, 2.0 * min(np.mean(means <= 0.0), np.mean(means >= 0.0))))


def _bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """int[n_boot, n]: how often each of n users is drawn in each bootstrap resample.

    Multinomial counts instead of index draws: memory-light and fast; resampled means are counts @ x / n.
    """
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


@dataclass(frozen=True)
class PairedComparison:
    """Model A minus model B on the same users: mean difference, its 95% CI, two-sided p-value
    (from the same bootstrap: the CI excludes 0 exactly when p < 0.05)."""

    difference: Estimate
    p_value: float
    n_users: int


def paired_comparison(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> PairedComparison:
    """Compare two models' per-user values on the same users by a paired bootstrap.

    a, b: float[n_users] (one seed) or float[n_seeds, n_users]; the users (columns) are the same
    targets in the same order. Every resample draws the users once for both models (paired by
    user). Seeds are drawn with replacement too (two levels, see `bootstrap_ci`): paired by index
    when both have the same number of seeds (seed s of A with seed s of B, as for a model and its
    ablation trained with the same seeds), independently otherwise (e.g. a deterministic model
    with one seed against a network with five). The p-value comes from the same resamples, so it
    agrees with the interval.
    """
    a, b = _per_seed(a, "paired_comparison"), _per_seed(b, "paired_comparison")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"paired_comparison needs the same users for both models; got {a.shape[1]} and {b.shape[1]}."
        )
    rng = np.random.default_rng(seed)
    counts = _bootstrap_counts(a.shape[1], n_boot, rng)
    if a.shape[0] == b.shape[0]:
        differences = seed_user_means(a - b, counts, rng)
    else:
        differences = seed_user_means(a, counts, rng) - seed_user_means(b, counts, rng)
    low, high = _interval(differences, level)
    estimate = Estimate(float(a.mean() - b.mean()), low, high)
    return PairedComparison(estimate, _p_value(differences), a.shape[1])


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family of m tests: sort p ascending, then
    adjusted_(i) = max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where adjusted < alpha
    keeps the chance of any false rejection in the family below alpha."""
    p_values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    scaled = np.minimum(1.0, (len(p_values) - np.arange(len(p_values))) * p_values[order])
    adjusted = np.empty_like(p_values)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


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
