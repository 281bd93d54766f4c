import numpy as np
import pytest

from recsys_helpers.metrics import (
    bootstrap_ci,
    hit_rate,
    hits,
    holm,
    ndcg,
    ndcg_gains,
    paired_comparison,
    rank_of_positive,
    relative_gain,
)


def test_rank_counts_negatives_scoring_at_least_the_positive():
    pos = np.array([0.9, 0.5, 0.1])
    neg = np.array([[0.1, 0.2, 0.3], [0.6, 0.4, 0.7], [0.2, 0.3, 0.4]])
    assert rank_of_positive(pos, neg).tolist() == [0, 2, 3]


def test_ties_count_against_the_positive():
    assert rank_of_positive(np.array([0.5]), np.array([[0.5, 0.1, 0.5]])).tolist() == [2]


def test_constant_scores_give_zero_hit_rate_never_one():
    ranks = rank_of_positive(np.zeros(4), np.zeros((4, 999)))
    assert ranks.tolist() == [999] * 4
    assert hit_rate(ranks, 10) == 0.0
    assert ndcg(ranks, 10) == 0.0


def test_hit_rate_and_ndcg_worked_example_from_the_docstring():
    ranks = np.array([0, 1, 5])
    assert hit_rate(ranks, 2) == pytest.approx(2 / 3)
    assert ndcg(ranks, 2) == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert ndcg(ranks, 2) == pytest.approx(0.5436, abs=1e-4)


def test_rank_exactly_k_is_a_miss():
    assert hits(np.array([9, 10]), 10).tolist() == [1.0, 0.0]
    assert ndcg_gains(np.array([10]), 10).tolist() == [0.0]


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        rank_of_positive(np.array([np.nan]), np.zeros((1, 3)))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes"):
        rank_of_positive(np.zeros(2), np.zeros((3, 4)))


def test_bad_k_and_empty_ranks_are_refused():
    with pytest.raises(ValueError, match="k must be"):
        hit_rate(np.array([1]), 0)
    with pytest.raises(ValueError, match="non-empty"):
        ndcg(np.array([]), 10)


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = np.r_[np.ones(30), np.zeros(70)]
    a = bootstrap_ci(values, seed=1)
    assert a.mean == pytest.approx(0.3)
    assert a.low < a.mean < a.high
    assert 0.18 < a.low and a.high < 0.42  # about +-1.96 * sqrt(0.3 * 0.7 / 100) = +-0.09
    assert bootstrap_ci(values, seed=1) == a


def test_bootstrap_ci_of_a_constant_has_zero_width():
    est = bootstrap_ci(np.full(50, 0.25))
    assert est.low == est.mean == est.high == 0.25


def test_paired_comparison_detects_a_consistent_gain():
    rng = np.random.default_rng(0)
    b = rng.random(400)
    result = paired_comparison(b + 0.05, b)
    assert result.difference.mean == pytest.approx(0.05)
    assert result.p_value < 0.01
    assert result.n_users == 400


def test_paired_comparison_of_identical_models_is_not_significant():
    b = np.random.default_rng(1).random(300)
    result = paired_comparison(b, b)
    assert result.difference.mean == 0.0
    assert result.p_value == 1.0


def test_paired_comparison_needs_the_same_users():
    with pytest.raises(ValueError, match="same users"):
        paired_comparison(np.zeros(3), np.zeros(4))


def test_the_two_level_interval_widens_when_the_seeds_disagree():
    # Five seeds of one model on the same 400 users: each seed shifts every user by its own
    # offset (seed-to-seed spread 0.05 on a mean of 0.5), much more than the users' own noise.
    users = np.random.default_rng(0).uniform(0.2, 0.8, size=400)
    offsets = np.array([-0.08, -0.04, 0.0, 0.04, 0.08])
    per_seed = users[None] + offsets[:, None]
    user_only = bootstrap_ci(per_seed.mean(axis=0))  # seeds averaged first: users are the only noise
    two_level = bootstrap_ci(per_seed)
    assert two_level.mean == pytest.approx(user_only.mean)
    assert two_level.high - two_level.low > 2 * (user_only.high - user_only.low)
    agreeing = bootstrap_ci(np.repeat(users[None], 5, axis=0))  # identical seeds: nothing to add
    assert [*agreeing.__dict__.values()] == pytest.approx([*bootstrap_ci(users).__dict__.values()])


def test_one_seed_each_is_the_plain_user_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.random(200), rng.random(200)
    assert paired_comparison(a[None], b[None]) == paired_comparison(a, b)
    together, difference = paired_comparison(a, b).difference, bootstrap_ci(a - b)
    assert together.low == pytest.approx(difference.low) and together.high == pytest.approx(difference.high)


def test_models_with_different_numbers_of_seeds_are_compared_on_the_same_users():
    rng = np.random.default_rng(4)
    network = rng.random((5, 300)) + 0.1  # five seeds
    floor = rng.random(300)  # a deterministic model: one seed
    result = paired_comparison(network, floor)
    assert result.difference.mean == pytest.approx(network.mean() - floor.mean())
    assert result.difference.low > 0 and result.p_value < 0.05


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, -0.03, -0.05])
def test_the_p_value_and_the_interval_agree_near_zero(shift):
    rng = np.random.default_rng(5)
    b = rng.random(500)
    a = b + shift + rng.normal(0.0, 0.3, 500)
    result = paired_comparison(a, b)
    excludes_zero = result.difference.low > 0 or result.difference.high < 0
    assert excludes_zero == (result.p_value < 0.05)


def test_holm_adjusts_the_smallest_p_value_by_the_family_size():
    np.testing.assert_allclose(holm(np.array([0.03, 0.2, 0.5])), [0.09, 0.4, 0.5])
    np.testing.assert_allclose(holm(np.array([0.01, 0.02, 0.04])), [0.03, 0.04, 0.04])  # monotone
    np.testing.assert_allclose(holm(np.array([0.3])), [0.3])


def test_relative_gain_is_the_ratio_of_means_minus_one_with_a_ci():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.2, 0.4, size=500)
    gain = relative_gain(1.15 * b, b)
    assert gain.mean == pytest.approx(0.15)
    assert gain.low == pytest.approx(0.15) and gain.high == pytest.approx(0.15)  # exact for a scaled copy
    noisy = relative_gain(b + rng.normal(0, 0.1, size=500), b)
    assert noisy.low < noisy.mean < noisy.high


def test_relative_gain_rejects_a_zero_reference():
    with pytest.raises(ValueError, match="undefined"):
        relative_gain(np.ones(3), np.zeros(3))
