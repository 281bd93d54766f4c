import numpy as np
import pytest

from recsys_helpers.data import DataError, preprocess
from recsys_helpers.protocol import Split, leave_one_out, sample_negatives
from tests.helpers import make_events

# Raw item k is dense item k (items 1..11 all appear). User 1 buys twice then views item 6 after
# the test target; user 2 buys once; user 3 never buys (train only).
ROWS = [
    (1, 1, 0, "view"), (1, 2, 1, "view"), (1, 3, 2, "buy"),
    (1, 4, 3, "view"), (1, 5, 4, "buy"), (1, 6, 5, "view"),
    (2, 7, 0, "view"), (2, 8, 1, "view"), (2, 9, 2, "view"), (2, 10, 3, "view"), (2, 11, 4, "buy"),
    (3, 1, 0, "view"), (3, 2, 1, "view"), (3, 3, 2, "view"), (3, 4, 3, "view"), (3, 5, 4, "view"),
]  # fmt: skip


@pytest.fixture
def split() -> Split:
    return leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, seed=7)


def test_test_target_is_the_last_explicit_event(split):
    assert split.test.user.tolist() == [0, 1]
    assert split.test.item.tolist() == [5, 11]


def test_validation_target_is_the_explicit_event_before_the_test_target(split):
    assert split.valid.user.tolist() == [0]
    assert split.valid.item.tolist() == [3]


def test_users_without_explicit_events_are_train_only(split):
    assert 2 not in split.test.user and 2 not in split.valid.user
    assert split.train["user"].eq(2).sum() == 5


def test_no_training_event_at_or_after_a_held_out_target(split):
    train = split.train
    assert train[train["user"] == 0]["item"].tolist() == [1, 2]  # strictly before the validation buy
    assert train[train["user"] == 1]["item"].tolist() == [7, 8, 9, 10]
    for targets in (split.valid, split.test):
        for user, row in zip(targets.user, targets.row, strict=True):
            user_train_rows = np.flatnonzero(split.is_train & (split.events["user"].to_numpy() == user))
            assert user_train_rows.max() < row


def test_nothing_after_the_test_target_is_kept(split):
    assert 6 not in split.events[split.events["user"] == 0]["item"].tolist()
    assert split.events.iloc[split.test.row]["item"].tolist() == [5, 11]


def test_candidates_are_the_target_then_distinct_never_interacted_items(split):
    for user, candidates in zip(split.test.user, split.test.candidates, strict=True):
        seen = set(split.events[split.events["user"] == user]["item"])
        assert candidates[0] == split.test.item[split.test.user == user][0]
        assert len(set(candidates[1:])) == 3
        assert not seen & set(candidates[1:])


def test_an_item_viewed_only_after_the_test_target_may_be_a_negative():
    # "Nothing after the test target is used": item 6 (viewed later by user 1) stays eligible.
    drawn = set()
    for seed in range(30):
        drawn |= set(
            leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, seed=seed).test.candidates[0, 1:]
        )
    assert 6 in drawn
    assert drawn == {6, 7, 8, 9, 10, 11}


def test_same_seed_same_candidates_other_seed_other_candidates(split):
    again = leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, seed=7)
    np.testing.assert_array_equal(again.test.candidates, split.test.candidates)
    others = [
        leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, seed=s).test.candidates for s in range(5)
    ]
    assert any(not np.array_equal(o, split.test.candidates) for o in others)


def test_unbought_mode_lets_viewed_but_unbought_items_be_negatives():
    drawn = set()
    for seed in range(30):
        s = leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, negatives="unbought", seed=seed)
        drawn |= set(s.test.candidates[0, 1:])
    assert {1, 2, 4} <= drawn  # viewed by user 1, never bought
    assert not {3, 5} & drawn  # bought


def test_sequences_are_the_last_items_before_the_target_left_padded(split):
    assert split.sequences("test", 3).tolist() == [[2, 3, 4], [8, 9, 10]]
    assert split.sequences("valid", 4).tolist() == [[0, 0, 1, 2]]


def test_excluded_items_match_the_negative_mode(split):
    ptr, items = split.excluded_items("test")
    assert items[ptr[0] : ptr[1]].tolist() == [1, 2, 3, 4, 5]
    assert items[ptr[1] : ptr[2]].tolist() == [7, 8, 9, 10, 11]
    unbought = leave_one_out(preprocess(make_events(ROWS)), n_negatives=3, negatives="unbought")
    ptr, items = unbought.excluded_items("test")
    assert items[ptr[0] : ptr[1]].tolist() == [3, 5]


def test_save_and_load_round_trip(split, tmp_path):
    loaded = Split.load(split.save(tmp_path / "split"))
    np.testing.assert_array_equal(loaded.test.candidates, split.test.candidates)
    np.testing.assert_array_equal(loaded.valid.row, split.valid.row)
    np.testing.assert_array_equal(loaded.is_train, split.is_train)
    assert loaded.events.equals(split.events)
    assert loaded.negatives == split.negatives and loaded.seed == split.seed


def test_loading_a_missing_split_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved split"):
        Split.load(tmp_path)


def test_no_explicit_events_is_a_clear_error():
    rows = [(3, i, i, "view") for i in range(1, 7)]
    with pytest.raises(DataError, match="no explicit events"):
        leave_one_out(preprocess(make_events(rows)), n_negatives=1)


def test_too_few_items_for_the_negatives_is_a_clear_error():
    with pytest.raises(DataError, match="Lower n_negatives"):
        leave_one_out(preprocess(make_events(ROWS)), n_negatives=7)


def test_bad_parameters_are_refused():
    data = preprocess(make_events(ROWS))
    with pytest.raises(ValueError, match="negatives must be one of"):
        leave_one_out(data, negatives="random")
    with pytest.raises(ValueError, match="n_negatives"):
        leave_one_out(data, n_negatives=0)


def test_rejection_sampler_is_uniform_distinct_and_avoids_exclusions():
    n_items, users = 2_000, np.arange(300)
    excluded = np.unique(users[:, None] * (n_items + 1) + np.arange(1, 51)[None, :])  # items 1..50
    rng = np.random.default_rng(0)
    drawn = sample_negatives(users, excluded, n_items, 99, rng)
    assert drawn.shape == (300, 99)
    assert drawn.min() > 50 and drawn.max() <= n_items
    assert all(len(set(row)) == 99 for row in drawn)
    counts = np.bincount(drawn.ravel(), minlength=n_items + 1)[51:]
    expected = 300 * 99 / (n_items - 50)
    assert abs(counts.mean() - expected) < 1e-9
    assert counts.std() < 2.5 * np.sqrt(expected)  # close to binomial spread: no favoured items


def test_same_session_sequences_stop_at_the_session_start():
    rows = [
        (1, 1, 0, "view"),
        (1, 2, 1, "view"),
        (1, 3, 120, "view"),
        (1, 4, 121, "view"),
        (1, 5, 122, "buy"),
    ]
    split = leave_one_out(
        preprocess(make_events(rows + [(2, i, i, "view") for i in range(6, 12)])), n_negatives=2
    )
    assert split.sequences("test", 4).tolist() == [[1, 2, 3, 4]]
    assert split.sequences("test", 4, same_session=True).tolist() == [[0, 0, 3, 4]]
