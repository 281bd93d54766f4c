import numpy as np
import pytest

from recsys_helpers.data import DataError, preprocess, table1
from tests.helpers import make_events

# user 10: 5 events (kept), user 20: 4 events (removed), user 30: 6 events with a duplicate row.
ROWS = [
    (10, 100, 0, "view"), (10, 101, 1, "view"), (10, 100, 2, "buy"),
    (10, 102, 100, "view"), (10, 103, 101, "buy"),
    (20, 100, 0, "view"), (20, 104, 1, "view"), (20, 105, 2, "view"), (20, 104, 3, "buy"),
    (30, 105, 0, "view"), (30, 105, 0, "view"), (30, 106, 5, "view"),
    (30, 101, 6, "view"), (30, 106, 7, "buy"),
    (30, 107, 8, "view"),
]  # fmt: skip


def test_users_with_fewer_than_five_interactions_are_removed_and_counted():
    data = preprocess(make_events(ROWS))
    assert data.user_ids.tolist() == [10, 30]
    assert data.report["users_removed"] == 1
    assert data.report["events_removed"] == 4


def test_exact_duplicate_rows_are_removed_before_counting_and_reported():
    data = preprocess(make_events(ROWS))
    assert data.report["exact_duplicates_removed"] == 1
    assert len(data.events) == 5 + 5


def test_duplicates_can_be_kept():
    data = preprocess(make_events(ROWS), drop_duplicates=False)
    assert data.report["exact_duplicates_removed"] == 0
    assert len(data.events) == 5 + 6


def test_dense_ids_start_items_at_one_and_map_back_to_raw_ids():
    data = preprocess(make_events(ROWS))
    events = data.events
    assert events["user"].tolist() == [0] * 5 + [1] * 5
    assert events["item"].min() == 1
    assert data.item_ids[0] == -1  # the padding item
    raw = data.item_ids[events["item"].to_numpy()]
    assert raw.tolist() == [100, 101, 100, 102, 103, 105, 106, 101, 106, 107]
    assert data.n_items == 7


def test_sessions_split_after_thirty_minutes_of_inactivity_and_per_user():
    data = preprocess(make_events(ROWS))
    assert data.events["session"].tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]


def test_empty_after_filtering_is_a_clear_error():
    with pytest.raises(DataError, match="nothing is left after filtering"):
        preprocess(make_events(ROWS[:5]), min_interactions=6)


def test_bad_min_interactions_is_refused():
    with pytest.raises(ValueError, match="min_interactions"):
        preprocess(make_events(ROWS), min_interactions=0)


def test_table1_counts_and_sparsity_by_hand():
    stats = table1(preprocess(make_events(ROWS)))
    # user 10 touches items {100,101,102,103}, user 30 {105,106,101,107}: 8 distinct pairs of 2 x 7.
    assert stats == {
        "users": 2,
        "items": 7,
        "implicit": 3 + 4,
        "explicit": 2 + 1,
        "sparsity": pytest.approx(1 - 8 / 14),
    }
    assert np.isclose(stats["sparsity"], 0.428571, atol=1e-6)
