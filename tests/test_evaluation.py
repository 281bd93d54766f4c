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

    def score(self, users, sequences, candidates, kinds=None):
        return (candidates == np.array([self.target[u] for u in users])[:, None]).astype(float)


class _Constant:
    def score(self, users, sequences, candidates, kinds=None):
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


# ---------------------------------------------------------------------- the notebooks' table helpers
def test_paired_table_gives_the_mean_difference_and_an_interval_per_pair():
    from recsys_helpers.evaluation import paired_table

    ranks = {"a": np.array([0, 0, 20, 20]), "b": np.array([20, 0, 20, 20]), "c": np.array([0, 0, 0, 0])}
    evaluations = {name: Evaluation(r) for name, r in ranks.items()}
    table = paired_table(evaluations, [("a", "b"), ("b", "c")])
    assert list(table.index) == ["a - b", "b - c"]
    assert table.loc["a - b", "difference"] == 0.25 and table.loc["b - c", "difference"] == -0.75
    assert (table["low"] <= table["difference"]).all() and (table["difference"] <= table["high"]).all()
    assert table.loc["b - c", "high"] < 0 < table.loc["b - c", "p_value"] <= 1


def test_the_tables_read_a_list_of_evaluations_as_seeds_with_a_two_level_interval():
    from recsys_helpers.evaluation import paired_table

    rng = np.random.default_rng(0)
    repeat = rng.random(200) < 0.5
    hits = {"a": [rng.random(200) < p for p in (0.9, 0.3)], "b": [rng.random(200) < p for p in (0.5, 0.5)]}
    seeds = {
        name: [Evaluation(np.where(h, 0, 50), repeat=repeat) for h in runs] for name, runs in hits.items()
    }
    table = comparison_table(seeds)
    assert table.loc["a", "hr@10"] == pytest.approx(np.mean(hits["a"]))
    assert table.loc["a", "hr@10_new"] == pytest.approx(np.mean([h[~repeat] for h in hits["a"]]))
    one_seed = comparison_table({"a": seeds["a"][0]})
    low, high = (float(x) for x in table.loc["a", "ci"].strip("[]").split(","))
    low1, high1 = (float(x) for x in one_seed.loc["a", "ci"].strip("[]").split(","))
    assert high - low > 2 * (high1 - low1)  # the seeds disagree (0.9 vs 0.3): their spread counts
    paired = paired_table(seeds, [("a", "b")]).loc["a - b"]
    assert paired["difference"] == pytest.approx(np.mean(hits["a"]) - np.mean(hits["b"]))
    assert paired["low"] < 0 < paired["high"]  # +0.4 at one seed, -0.2 at the other: not established


def test_gain_by_group_is_the_relative_ndcg_gain_per_group_with_nan_for_an_empty_group():
    from recsys_helpers.evaluation import gain_by_group

    model, reference = Evaluation(np.array([0, 0, 1, 1])), Evaluation(np.array([1, 1, 1, 1]))
    groups = {"first two": np.array([True, True, False, False]), "none": np.zeros(4, dtype=bool)}
    table = gain_by_group({"model": model, "MF": reference}, "MF", groups).set_index("users")
    assert list(table["model"]) == ["model", "model"] and table.loc["first two", "n"] == 2
    assert table.loc["first two", "gain"] == pytest.approx(1.0 / (1.0 / np.log2(3)) - 1.0)
    assert np.isnan(table.loc["none", "gain"]) and table.loc["none", "n"] == 0


def test_top_items_leaves_out_the_users_earlier_items_and_ranks_the_target_as_evaluate_does():
    from recsys_helpers.evaluation import top_items

    split = synthetic_split("ci")[2]
    model = _Oracle(split)
    items, rank = top_items(model, split, 3, k=5)
    ptr, excluded = split.excluded_items("test")
    own = set(excluded[ptr[3] : ptr[4]]) - {split.test.item[3]}
    assert items[0] == split.test.item[3] and rank == 1 and not own & set(items[1:]) and len(items) == 5


def test_occlusion_removes_each_item_of_the_window_the_model_reads():
    from recsys_helpers.evaluation import occlusion
    from recsys_helpers.protocol import distinct_window

    class LastItem:  # reads the last 3 distinct items; scores an item 1 when it is the window's last
        def window_inputs(self, items, kinds):
            sequence, kinds = distinct_window(np.asarray(items), np.asarray(kinds), 3)
            return {"sequence": sequence, "kinds": kinds}

        def score(self, users, sequences, candidates, kinds=None):
            window = self.window_inputs(sequences, kinds)["sequence"]
            return (candidates == window[:, -1:]).astype(float)

    split = synthetic_split("ci")[2]
    items, kinds = split.windows("test", 50)
    windows = distinct_window(items, kinds, 3)[0]
    user = np.flatnonzero((windows != items[:, -3:]).any(axis=1))[0]  # a repeat in its last events
    window = windows[user]
    drops = occlusion(LastItem(), split, user, {"last": int(window[-1]), "other": 10**6})
    assert list(drops["item"]) == list(window[window > 0])
    assert list(drops["position"]) == [f"t-{3 - p}" for p in np.flatnonzero(window)]
    assert drops.set_index("position").loc["t-1", "last"] == 1.0 and (drops["other"] == 0).all()
