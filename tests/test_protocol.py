import numpy as np
import pytest

from recsys_helpers.data import DataError, preprocess
from recsys_helpers.protocol import (
    Split,
    Targets,
    distinct_window,
    event_kinds,
    last_events,
    leave_one_out,
    protocol_facts,
    sample_negatives,
)
from tests.helpers import make_events, synthetic_split

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


def test_sequences_are_the_last_items_before_the_target_left_padded(split):
    assert split.sequences("test", 3).tolist() == [[2, 3, 4], [8, 9, 10]]
    assert split.sequences("valid", 4).tolist() == [[0, 0, 1, 2]]


def test_windows_carry_each_events_kind_and_pad_with_kind_zero():
    rows = [(1, 1, 0, "view"), (1, 2, 1, "cart"), (1, 2, 2, "buy"), (1, 3, 3, "view"), (1, 4, 4, "view")]
    events = preprocess(make_events(rows)).events  # dense ids: item_id k -> item k
    assert event_kinds(events).tolist() == [1, 2, 3, 1, 1]
    items, kinds = last_events(events, np.array([3]), 5)
    assert items.tolist() == [[0, 0, 1, 2, 2]] and kinds.tolist() == [[0, 0, 1, 2, 3]]


def test_a_distinct_window_keeps_each_items_last_place_and_strongest_kind():
    items = np.array([[0, 7, 8, 7, 9], [5, 5, 5, 5, 5], [1, 2, 3, 4, 6]])
    kinds = np.array([[0, 2, 1, 1, 1], [1, 1, 3, 1, 1], [1, 1, 1, 1, 2]], dtype=np.int8)
    distinct, strongest = distinct_window(items, kinds, 3)
    assert distinct.tolist() == [[8, 7, 9], [0, 0, 5], [3, 4, 6]]
    assert strongest.tolist() == [[1, 2, 1], [0, 0, 3], [1, 1, 2]]


def test_excluded_items_are_every_touched_item_under_the_papers_negatives(split):
    ptr, items = split.excluded_items("test")
    assert items[ptr[0] : ptr[1]].tolist() == [1, 2, 3, 4, 5]
    assert items[ptr[1] : ptr[2]].tolist() == [7, 8, 9, 10, 11]


def test_save_and_load_round_trip(split, tmp_path):
    loaded = Split.load(split.save(tmp_path / "split"))
    np.testing.assert_array_equal(loaded.test.candidates, split.test.candidates)
    np.testing.assert_array_equal(loaded.valid.row, split.valid.row)
    np.testing.assert_array_equal(loaded.is_train, split.is_train)
    np.testing.assert_array_equal(loaded.test.repeat, split.test.repeat)
    np.testing.assert_array_equal(loaded.test.kind, split.test.kind)
    assert loaded.events.equals(split.events)
    assert (loaded.negatives, loaded.seed, loaded.targets_mode) == (
        split.negatives,
        split.seed,
        "interactions",
    )


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
    with pytest.raises(ValueError, match="targets must be one of"):
        leave_one_out(data, targets="sessions")


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


# ----------------------------------------------------------------------------- protocol v2
# User 1: session A (minutes 0-3) views 1, carts 2 twice and buys 2; session B (minute 100) views
# 3, carts 3, buys 3; session C (minute 300) views 4, views 2 again, carts 2 (a repeat purchase).
# User 2: views 5..9 and buys 9. Items 10..30 are only viewed by user 3 (train only).
V2_ROWS = [
    (1, 1, 0, "view"), (1, 2, 1, "cart"), (1, 2, 2, "cart"), (1, 2, 3, "buy"),
    (1, 3, 100, "view"), (1, 3, 101, "cart"), (1, 3, 102, "buy"),
    (1, 4, 300, "view"), (1, 2, 301, "view"), (1, 2, 302, "cart"),
    (2, 5, 0, "view"), (2, 6, 1, "view"), (2, 7, 2, "view"), (2, 8, 3, "view"), (2, 9, 4, "buy"),
    *[(3, i, i, "view") for i in range(10, 31)],
]  # fmt: skip


def v2_split(**options) -> Split:
    return leave_one_out(preprocess(make_events(V2_ROWS)), **{"n_negatives": 5, "seed": 3} | options)


def test_a_cart_and_its_transaction_in_one_session_are_one_target():
    split = v2_split()
    # User 1's interactions: item 2 (session A), item 3 (session B), item 2 (session C).
    assert split.test.item.tolist() == [2, 9] and split.valid.item.tolist() == [3]
    assert split.events.loc[split.valid.row, "event"].tolist() == ["cart"]  # the first explicit event
    assert split.valid.kind.tolist() == ["buy"]  # its strongest kind: the cart was bought
    assert split.test.kind.tolist() == ["cart", "buy"]


def test_the_paper_literal_targets_count_every_explicit_event():
    split = v2_split(targets="events")
    assert split.test.item.tolist() == [2, 9]
    assert split.valid.item.tolist() == [3] and split.valid.kind.tolist() == ["buy"]  # item 3's buy
    assert split.valid.row.tolist() == [split.test.row[0] - 3]


def test_validation_and_test_items_rarely_coincide_once_carts_are_folded():
    _, data, _ = synthetic_split("ci")
    for targets, low, high in (("events", 0.2, 1.0), ("interactions", 0.0, 0.05)):
        facts = protocol_facts(leave_one_out(data, n_negatives=1, targets=targets))
        assert low <= facts["share_test_equals_valid"] < high, (targets, facts)


def test_repeat_means_the_item_occurs_in_the_history_before_the_target():
    split = v2_split()
    assert split.test.repeat.tolist() == [True, False]  # item 2 was carted in session A
    assert split.valid.repeat.tolist() == [True]  # item 3 was viewed just before its cart


def test_repeat_is_computed_from_history_only():
    # The same events, but user 2 views item 9 again AFTER buying it: nothing changes.
    later = leave_one_out(preprocess(make_events([*V2_ROWS, (2, 9, 10, "view")])), n_negatives=5, seed=3)
    np.testing.assert_array_equal(later.test.repeat, v2_split().test.repeat)


def test_selection_fit_stops_before_validation_and_final_fit_before_test():
    split = v2_split()
    final = split.final()
    users = split.events["user"].to_numpy()
    rows = np.arange(len(users))
    for targets, mask in ((split.valid, split.is_train), (split.test, final.is_train)):
        for user, row in zip(targets.user, targets.row, strict=True):
            assert not (mask & (users == user) & (rows >= row)).any()
    # The final fit sees everything before the test target, the validation target included.
    assert final.train[final.train["user"] == 0]["item"].tolist() == [1, 2, 2, 2, 3, 3, 3, 4, 2]
    assert split.train[split.train["user"] == 0]["item"].tolist() == [1, 2, 2, 2, 3]
    assert len(final.valid) == 0 and final.stage == "final" and final.final() is final
    np.testing.assert_array_equal(final.test.candidates, split.test.candidates)


def test_hard_candidates_hold_every_touched_item_then_never_interacted_ones():
    split = v2_split(negatives="hard")
    test_candidates = split.test.candidates[0]
    assert test_candidates[0] == 2
    assert test_candidates[1:4].tolist() == [4, 3, 1]  # touched before, most recent first
    assert not set(test_candidates[4:]) & {1, 2, 3, 4}
    valid_candidates = split.valid.candidates[0]  # before the validation target: items 1 and 2
    assert valid_candidates[0] == 3 and valid_candidates[1:3].tolist() == [2, 1]
    assert not set(valid_candidates[3:]) & {1, 2, 3, 4}  # never-interacted fill


def test_hard_candidates_keep_the_most_recent_touched_items_when_there_are_too_many():
    rows = [(1, i, i, "view") for i in range(1, 12)] + [(1, 1, 20, "buy")]
    rows += [(2, i, i, "view") for i in range(12, 20)]
    split = leave_one_out(preprocess(make_events(rows)), n_negatives=4, negatives="hard")
    assert split.test.candidates[0].tolist() == [1, 11, 10, 9, 8]


@pytest.mark.parametrize("negatives", ["never_interacted", "hard"])
@pytest.mark.parametrize("targets", ["interactions", "events"])
def test_candidates_never_hold_the_target_twice_and_are_distinct(negatives, targets):
    _, data, _ = synthetic_split("ci")
    split = leave_one_out(data, n_negatives=99, negatives=negatives, targets=targets, seed=1)
    for kind in ("valid", "test"):
        candidates = split.targets(kind).candidates
        assert (candidates[:, 1:] != candidates[:, :1]).all()
        ordered = np.sort(candidates, axis=1)
        assert (ordered[:, 1:] != ordered[:, :-1]).all() and ordered.min() >= 1


def test_hard_full_ranking_negatives_are_every_item_touched_before_the_target():
    split = v2_split(negatives="hard")
    ptr, items = split.excluded_items("test")
    assert items[ptr[0] : ptr[1]].tolist() == []  # nothing of the user's is excluded at the test target
    ptr, items = split.excluded_items("valid")
    assert items[ptr[0] : ptr[1]].tolist() == []  # item 4, touched after it, is not known then


def test_validation_candidates_know_nothing_after_the_validation_target():
    # User 1 touches items 1-3 up to the validation target (item 3), item 4 only after it.
    split = v2_split()
    ptr, items = split.excluded_items("valid")
    assert items[ptr[0] : ptr[1]].tolist() == [1, 2, 3]
    ptr, items = split.excluded_items("test")
    assert items[ptr[0] : ptr[1]].tolist() == [1, 2, 3, 4]
    drawn = np.concatenate([v2_split(seed=seed).valid.candidates[0, 1:] for seed in range(20)])
    assert 4 in drawn and not {1, 2} & set(drawn)  # a later item can be a validation negative


def test_too_few_items_for_the_hard_candidates_is_a_clear_error():
    with pytest.raises(DataError, match="Lower n_negatives"):
        v2_split(negatives="hard", n_negatives=40)


@pytest.mark.parametrize("negatives", ["never_interacted", "hard"])
def test_same_seed_same_split_bit_for_bit(negatives):
    _, data, _ = synthetic_split("ci")
    a, b = (leave_one_out(data, n_negatives=99, negatives=negatives, seed=5) for _ in range(2))
    for kind in ("valid", "test"):
        for name in Targets.FIELDS:
            np.testing.assert_array_equal(getattr(a.targets(kind), name), getattr(b.targets(kind), name))
    np.testing.assert_array_equal(a.is_train, b.is_train)
    np.testing.assert_array_equal(a.final().is_train, b.final().is_train)


def test_protocol_facts_count_repeat_last5_and_doubled_targets():
    facts = protocol_facts(v2_split())
    assert facts["share_repeat_targets"] == 0.5  # user 1's item 2 yes, user 2's item 9 no
    assert facts["share_targets_in_last5"] == 0.5  # item 2 was viewed just before its cart
    assert facts["share_test_equals_valid"] == 0.0
