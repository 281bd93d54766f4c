import numpy as np
import pytest

from recsys_helpers.analysis import interest_shift
from recsys_helpers.data import preprocess
from recsys_helpers.protocol import leave_one_out
from tests.helpers import make_events, synthetic_split

CATEGORY = {
    **dict.fromkeys(range(1, 6), 100),
    **dict.fromkeys(range(6, 11), 200),
    **dict.fromkeys(range(11, 21), 300),
}


def split_with_categories(with_categories: bool = True):
    views = lambda user, items, start: [(user, i, start + k, "view") for k, i in enumerate(items)]  # noqa: E731
    rows = [
        # user 1: months of category 100, then five views of category 200 before the test purchase
        *views(1, [1, 2, 3, 4, 5], 0), (1, 1, 5, "buy"), *views(1, [1, 2], 6),
        *views(1, [6, 7, 8, 9, 10], 100), (1, 6, 105, "buy"),
        # user 2: the same amount of history, all in category 100
        *views(2, [1, 2, 3, 4, 5], 0), (2, 2, 5, "buy"), *views(2, [3, 4], 6),
        *views(2, [5, 1, 2, 3, 4], 100), (2, 5, 105, "buy"),
        # user 3: too little history before the last five events
        *views(3, [6, 7], 0), (3, 6, 2, "buy"), *views(3, [8, 9], 3), (3, 8, 5, "buy"),
        # user 4: the rest of the catalogue
        *views(4, range(11, 19), 0), (4, 19, 8, "buy"), *views(4, [20], 9), (4, 20, 10, "buy"),
    ]  # fmt: skip
    events = make_events(rows)
    if with_categories:
        events["category_id"] = events["item_id"].map(CATEGORY)
    return leave_one_out(preprocess(events), n_negatives=3, seed=0)


def test_a_move_to_a_new_category_scores_one_and_a_stable_user_zero():
    split = split_with_categories()
    shift = interest_shift(split, "test", recent=5, min_history=5).set_index(
        split.data.user_ids[split.test.user]
    )
    assert shift.loc[1, "shift"] == pytest.approx(1.0)
    assert shift.loc[1, "shifted"]
    assert (shift.loc[1, "history_top_category"], shift.loc[1, "recent_top_category"]) == (100, 200)
    assert shift.loc[2, "shift"] == pytest.approx(0.0)
    assert not shift.loc[2, "shifted"]
    assert shift.loc[1, "history_events"] == 8


def test_users_with_too_little_history_are_kept_with_nan_and_not_shifted():
    split = split_with_categories()
    shift = interest_shift(split, "test", recent=5, min_history=5)
    assert len(shift) == len(split.test)  # nobody dropped
    short = shift.set_index(split.data.user_ids[split.test.user]).loc[3]
    assert np.isnan(short["shift"]) and not short["shifted"]


def test_the_validation_target_only_sees_events_before_it():
    split = split_with_categories()
    shift = interest_shift(split, "valid", recent=5, min_history=1).set_index(
        split.data.user_ids[split.valid.user]
    )
    assert shift.loc[1, "history_events"] == 0  # the five views before the first purchase are all "recent"
    assert np.isnan(shift.loc[1, "shift"])


def test_data_without_categories_is_a_clear_error():
    with pytest.raises(ValueError, match="category file"):
        interest_shift(split_with_categories(with_categories=False))


def test_on_the_synthetic_shop_detected_shifts_are_enriched_in_true_shifts():
    shop, _, split = synthetic_split("ci", seed=0)
    shift = interest_shift(split)
    truth = shop.shifted_at(
        split.data.user_ids[split.test.user], split.events["timestamp"].to_numpy()[split.test.row]
    )
    assert truth.any() and shift["shifted"].any()
    assert truth[shift["shifted"]].mean() >= truth.mean()


def test_shift_agreement_scores_the_definition_against_a_known_truth():
    from recsys_helpers.analysis import shift_agreement

    shop, _, split = synthetic_split("ci")
    when = split.events["timestamp"].to_numpy()[split.test.row]
    truth = shop.shifted_at(split.data.user_ids[split.test.user], when)
    table = shift_agreement(split, truth, recents=(5,), thresholds=(0.0, 1.01))
    everyone, nobody = table.loc[(5, 0.0)], table.loc[(5, 1.01)]
    assert everyone["recall"] == 1.0
    assert everyone["precision"] == pytest.approx(everyone["base rate (known history)"])
    assert nobody["flagged"] == 0 and np.isnan(nobody["precision"])


def test_the_case_study_rule_prefers_a_qualifying_shift_user_and_falls_back_without_categories():
    from recsys_helpers.analysis import case_study_target

    _, data, split = synthetic_split("ci")
    shift = interest_shift(split)
    index, rule = case_study_target(split, shift["shifted"].to_numpy(), shift)
    assert shift["shifted"][index] and "recent category" in rule
    nobody = np.zeros(len(split.test), dtype=bool)
    index, rule = case_study_target(split, nobody, None)
    earlier = split.test.row - np.searchsorted(split.events["user"].to_numpy(), split.test.user)
    assert rule == "the test user with the longest history" and earlier[index] == earlier.max()
    without = type(data)(data.events.drop(columns="category_id"), data.user_ids, data.item_ids)
    assert data.has_categories() and not without.has_categories()


def test_with_two_models_ranks_the_case_is_a_new_target_on_which_they_disagree_most_whoever_wins():
    from recsys_helpers.analysis import case_study_target

    _, _, split = synthetic_split("ci")
    everyone = np.ones(len(split.test), dtype=bool)
    a = np.arange(len(split.test))  # the first target agrees, the rest disagree more and more
    b = np.zeros(len(split.test), dtype=np.int64)
    index, rule = case_study_target(split, everyone, None, ranks=(a, b))
    new = np.flatnonzero(~split.test.repeat)
    assert (
        index == new.max()
        and rule == "the shift user with a new target; of those, the one on whom the two models disagree most"
    )
    assert case_study_target(split, everyone, None, ranks=(b, a))[0] == index  # symmetric: not who wins


def test_the_shop_measures_each_planted_mechanism_where_its_knob_decides_it():
    from recsys_helpers.analysis import shop_knobs, shop_mechanisms
    from recsys_helpers.data import generate_shop

    # Every cart re-picks a viewed item, every view follows the chain, nobody shifts.
    pinned = dict(w_viewed=1.0, w_complement=0.0, w_intent=0.0, w_taste=0.0, p_chain=1.0, shift_fraction=0.0)
    shop = generate_shop("ci", seed=0, **pinned)
    m = shop_mechanisms(shop)
    assert m["chain"].all() and len(m["chain"]) == len(shop.view_item) - len(shop.session_user)
    assert "never viewed" not in set(m["cart_origin"]) and len(m["cart_origin"]) == len(shop.decision_item)
    assert len(m["taste_overlap"]) == 0
    counts = shop.events["event"].value_counts()
    assert m["funnel"].tolist() == [len(shop.session_user), counts["addtocart"], counts["transaction"]]
    assert ((1 / shop.config.n_categories <= m["top_taste"]) & (m["top_taste"] <= 1)).all()
    table = shop_knobs(shop).set_index("measured in the log")["value"]
    assert table["consecutive views that follow the chain"] == 1.0
    assert table["users whose taste shifts"] == 0.0


def test_a_shifted_users_taste_overlap_is_below_one_and_an_item_bought_unseen_is_never_viewed():
    from recsys_helpers.analysis import shop_mechanisms
    from recsys_helpers.data import generate_shop

    unseen = dict(w_viewed=0.0, w_complement=0.0, w_intent=0.0, w_taste=1.0, shift_fraction=1.0)
    m = shop_mechanisms(generate_shop("ci", seed=1, **unseen))
    assert len(m["taste_overlap"]) > 0 and (m["taste_overlap"] < 1).all()
    assert (m["cart_origin"] == "never viewed").mean() > 0.5  # taste draws rarely hit a viewed item
