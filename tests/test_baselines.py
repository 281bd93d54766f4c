import numpy as np
import pytest

from recsys_helpers.data import preprocess
from recsys_helpers.evaluation import evaluate
from recsys_helpers.models import MF, Popularity, RecentlyViewed, make_model
from recsys_helpers.protocol import leave_one_out
from tests.helpers import make_events, synthetic_split

# Items 1..8. Item 2 is seen by everyone, item 3 by two users. User 4's first event is the
# validation buy, so user 4 has no training rows; item 6 is only bought as a test target.
ROWS = [
    (1, 2, 0, "view"), (1, 3, 1, "view"), (1, 4, 2, "view"), (1, 5, 3, "view"), (1, 6, 4, "buy"),
    (2, 2, 0, "view"), (2, 3, 1, "view"), (2, 7, 2, "view"), (2, 8, 3, "view"), (2, 1, 4, "buy"),
    (3, 2, 0, "view"), (3, 1, 1, "view"), (3, 1, 2, "view"), (3, 4, 3, "view"), (3, 8, 4, "view"),
    (4, 5, 0, "buy"), (4, 7, 1, "view"), (4, 8, 2, "view"), (4, 2, 3, "view"), (4, 2, 4, "buy"),
]  # fmt: skip
TASTE_ONLY = {"p_chain": 0.0, "w_viewed": 0.0, "w_complement": 0.0, "w_intent": 0.0, "w_taste": 1.0}
MODELS = [Popularity, RecentlyViewed, MF]


@pytest.fixture(scope="module")
def tiny():
    return leave_one_out(preprocess(make_events(ROWS)), n_negatives=1, seed=0)


@pytest.fixture(scope="module")
def ci():
    return synthetic_split("ci", seed=0)[2]


def test_popularity_counts_training_interactions_with_repeats(tiny):
    model = Popularity()
    model.fit(tiny)
    assert model.item_counts_.tolist() == [0, 2, 3, 2, 2, 1, 0, 1, 2]  # buys of 6, 1, 5, 2 are targets


def test_recently_viewed_ranks_the_latest_own_item_first_by_its_last_occurrence(tiny):
    model = RecentlyViewed()
    model.fit(tiny)
    scores = model.score(np.array([0]), np.array([[0, 3, 4, 3]]), np.array([[4, 3, 2, 8, 5]]))[0]
    assert np.argsort(-scores, kind="stable").tolist() == [1, 0, 2, 3, 4]  # 3, 4, then 2 > 8 > 5 by count


def test_recently_viewed_with_unseen_candidates_is_popularity(tiny):
    model = RecentlyViewed()
    model.fit(tiny)
    scores = model.score(np.array([0]), np.array([[0, 0, 7, 4]]), np.array([[5, 2, 3]]))[0]
    assert np.argsort(-scores, kind="stable").tolist() == [1, 2, 0]  # counts 3 > 2 > 1


def test_mf_gives_users_and_items_without_training_rows_zero_vectors(tiny):
    model = MF(factors=2, verbose=0)
    model.fit(tiny)
    assert not model.user_factors_[3].any() and not model.item_factors_[[0, 6]].any()  # user 4, item 6
    assert model.user_factors_[:3].any(axis=1).all()


def test_mf_scores_a_few_candidates_and_every_item_alike(ci):
    model = MF(verbose=0)
    model.fit(ci)
    users, every_item = ci.test.user[:5], np.tile(np.arange(1, ci.n_items + 1), (5, 1))
    full = model.score(users, np.zeros((5, 1), int), every_item)  # scores all items, then picks
    few = model.score(users, np.zeros((5, 1), int), every_item[:, :3])  # gathers 3 item vectors
    np.testing.assert_allclose(few, full[:, :3], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_class", MODELS)
def test_scores_have_the_candidate_shape_and_are_finite(model_class, ci):
    model = model_class(verbose=0)
    model.fit(ci)
    scores = model.score(ci.test.user, ci.sequences("test", 50), ci.test.candidates)
    assert scores.shape == ci.test.candidates.shape and scores.dtype == np.float32
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("model_class", MODELS)
def test_bad_shapes_are_refused(model_class, tiny):
    model = model_class(factors=2, verbose=0)
    model.fit(tiny)
    with pytest.raises(ValueError, match="score expects"):
        model.score(np.arange(2), np.zeros((3, 5), int), np.ones((2, 4), int))


@pytest.mark.parametrize("model_class", MODELS)
def test_every_floor_and_mf_beat_random_on_the_ci_shop(model_class, ci):
    model = model_class(verbose=0)
    model.fit(ci)
    assert evaluate(model, ci).hr(10) > 2 * 0.10  # random: 10 of 100 candidates; seeds 0-2 gave >= 0.35


def test_recently_viewed_beats_popularity_when_purchases_follow_views(ci):
    floors = [Popularity(), RecentlyViewed()]
    for model in floors:
        model.fit(ci)
    assert evaluate(floors[1], ci).hr(10) > evaluate(floors[0], ci).hr(10) + 0.2  # seeds 0-2: +0.37..0.42


def test_mf_beats_popularity_on_a_taste_only_shop():
    split = synthetic_split(
        "ci", seed=0, n_users=1500, n_casual_users=0, taste_concentration=0.05, **TASTE_ONLY
    )[2]
    mf, popularity = MF(factors=16, verbose=0), Popularity()  # a small shop: a small rank
    mf.fit(split)
    popularity.fit(split)
    assert evaluate(mf, split).hr(10) > evaluate(popularity, split).hr(10) + 0.05  # seeds 0-2: +0.09..0.13


def test_mf_scores_are_a_function_of_its_seed(ci):
    models = [MF(seed=4, verbose=0), MF(seed=4, verbose=0), MF(seed=5, verbose=0)]
    for model in models:
        model.fit(ci)
    a, b, other = (
        model.score(ci.test.user, ci.sequences("test", 50), ci.test.candidates) for model in models
    )
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)


def test_seen_first_puts_the_users_touched_items_first_by_recency_then_the_inner_order(tiny):
    # User 1 (index 0) touched 2, 3, 4, 5 in training; popularity counts are [_, 2, 3, 2, 2, 1, 0, 1, 2].
    model = make_model("seen_first+popularity")
    model.fit(tiny)
    candidates = np.array([[8, 2, 1, 5, 3, 7]])
    scores = model.score(np.array([0]), np.zeros((1, 3), int), candidates)[0]
    ranked = candidates[0, np.argsort(-scores, kind="stable")].tolist()
    assert ranked == [5, 3, 2, 8, 1, 7]  # touched: 5 latest, then 3, then 2; the rest by count 2, 2, 1


def test_seen_first_remembers_the_history_of_the_fit_it_wraps(tiny):
    # The final fit adds the validation buy and its later views: user 4's touched items change.
    selection, final = make_model("seen_first+popularity"), make_model("seen_first+popularity")
    selection.fit(tiny)
    final.fit(tiny.final())
    user4 = np.array([3])
    candidates = np.array([[5, 2, 8]])
    assert (selection.score(user4, np.zeros((1, 1), int), candidates) <= 3).all()  # nothing touched yet
    assert np.argsort(-final.score(user4, np.zeros((1, 1), int), candidates)[0]).tolist() == [1, 2, 0]
