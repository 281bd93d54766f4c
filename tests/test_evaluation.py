import numpy as np
import pytest

from recsys_helpers.evaluation import Evaluation, comparison_table, count_beating, evaluate
from tests.helpers import synthetic_split


def test_full_rank_counts_only_allowed_items_scoring_at_least_the_positive():
    # Items 1..5. Row 0: positive 2 (score 0.5), item 4 excluded. Row 1: positive 5, nothing excluded.
    scores = np.array([[0.9, 0.5, 0.5, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4, 0.0]])
    ptr, excluded = np.array([0, 1, 1]), np.array([4])
    assert count_beating(scores, np.array([2, 5]), ptr, excluded).tolist() == [2, 4]


class _Oracle:
    """Scores the held-out item highest: a perfect model for the checks below."""

    def __init__(self, split):
        self.target = dict(zip(split.test.user, split.test.item, strict=True))

    def score(self, users, sequences, candidates):
        return (candidates == np.array([self.target[u] for u in users])[:, None]).astype(float)


class _Constant:
    def score(self, users, sequences, candidates):
        return np.zeros(np.shape(candidates))


def test_a_perfect_model_ranks_every_target_first_in_both_modes():
    split = synthetic_split("ci")[2]
    result = evaluate(_Oracle(split), split, full=True)
    assert result.hr(10) == result.hr(10, full=True) == 1.0
    assert result.ranks.max() == 0 and result.full_ranks.max() == 0


def test_a_constant_model_ranks_every_target_last():
    split = synthetic_split("ci")[2]
    result = evaluate(_Constant(), split, full=True)
    assert (result.ranks == split.test.candidates.shape[1] - 1).all()
    ptr, _ = split.excluded_items("test")
    allowed = split.n_items - np.diff(ptr)  # the target itself is among the excluded (own) items
    assert (result.full_ranks == allowed).all()
    assert result.hr(10, full=True) == 0.0


def test_comparison_table_splits_hr_into_repeat_and_new_targets():
    ranks = np.array([0, 20, 3, 50])  # hits: yes, no, yes, no
    repeat = np.array([True, True, False, False])
    table = comparison_table({"m": Evaluation(ranks, repeat=repeat)})
    row = table.loc["m"]
    assert (row["hr@10"], row["share_repeat"], row["hr@10_repeat"], row["hr@10_new"]) == (0.5, 0.5, 0.5, 0.5)
    assert row["ci"].startswith("[") and "full_hr@10" not in table.columns


def test_an_empty_group_is_nan_not_an_error():
    result = Evaluation(np.array([0, 1]), repeat=np.array([True, True]))
    assert result.hr(10, group="repeat") == 1.0 and np.isnan(result.hr(10, group="new"))
    with pytest.raises(ValueError, match="group must be"):
        result.hr(10, group="old")
