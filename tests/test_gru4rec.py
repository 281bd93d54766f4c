from dataclasses import asdict

import numpy as np
import pytest

from recsys_helpers.data import preprocess
from recsys_helpers.evaluation import evaluate, model_inputs
from recsys_helpers.models.base import ModelConfig
from recsys_helpers.models.gru4rec import GRU4Rec, GRU4RecNetwork, _length_bucketed_batches, session_sequences
from recsys_helpers.protocol import leave_one_out
from tests.helpers import make_events, synthetic_split

SMALL = {"dim": 16, "epochs": 2, "verbose": 0}
# User 1 has two sessions 98 minutes apart; user 2 one session. The buys are the test targets.
SESSION_ROWS = [
    (1, 1, 0, "view"), (1, 2, 1, "view"), (1, 3, 2, "view"),  # session 1
    (1, 4, 100, "view"), (1, 5, 101, "view"), (1, 6, 102, "buy"),  # session 2
    (2, 7, 0, "view"), (2, 8, 1, "view"), (2, 9, 2, "view"), (2, 10, 3, "view"), (2, 11, 4, "buy"),
]  # fmt: skip
SEQUENCE_ONLY = {"p_chain": 0.9, "w_viewed": 0.0, "w_complement": 1.0, "w_intent": 0.0, "w_taste": 0.0}


@pytest.fixture(scope="module")
def sessions_split():
    return leave_one_out(preprocess(make_events(SESSION_ROWS)), n_negatives=2)


@pytest.fixture(scope="module")
def ci():
    return synthetic_split("ci", seed=0)[2]


@pytest.fixture(scope="module")
def trained(ci):
    model = GRU4Rec(**SMALL)
    model.fit(ci)
    return model


def test_training_sequences_are_whole_sessions_that_never_cross_a_boundary(sessions_split):
    rows = GRU4Rec(**SMALL).training_sequences(sessions_split)
    assert rows.tolist() == [[1, 2, 3, 0], [4, 5, 0, 0], [7, 8, 9, 10]]  # right-padded, one per session


def test_long_sessions_keep_their_last_events(sessions_split):
    assert session_sequences(sessions_split.train, max_events=2).tolist() == [[2, 3], [4, 5], [9, 10]]


def test_evaluation_feeds_only_the_targets_own_session(sessions_split):
    _, sequences, _ = model_inputs(GRU4Rec(**SMALL), sessions_split, "test")
    assert sequences[:, -4:].tolist() == [[0, 0, 4, 5], [7, 8, 9, 10]]  # user 1: not items 1, 2, 3


def test_a_split_without_multi_event_sessions_is_refused():
    rows = [(user, 5 * user + k, 60 * k, "buy" if k == 4 else "view") for user in (1, 2) for k in range(5)]
    split = leave_one_out(preprocess(make_events(rows)), n_negatives=1)  # every session has 1 event
    with pytest.raises(ValueError, match="sessions with >= 2 events"):
        GRU4Rec(**SMALL).fit(split)


def test_each_epoch_batches_every_session_once_cut_to_its_longest(ci):
    sessions = session_sequences(ci.train)
    n_targets = (sessions[:, 1:] > 0).sum(axis=1)
    batches = _length_bucketed_batches(sessions, n_targets, 64, np.random.default_rng(0))
    assert sum(len(b) for b in batches) == len(sessions)
    assert sum(int((b[:, 1:] > 0).sum()) for b in batches) == n_targets.sum()
    assert all(b[:, -1].any() for b in batches)  # no all-padding column at the end
    assert max((b[:, 1:] > 0).sum() for b in batches) < 64 + sessions.shape[1]


def test_sampled_loss_is_cross_entropy_over_the_sampled_items_without_copies_of_the_target():
    network = GRU4RecNetwork(n_items=5, dim=3)
    sessions, negatives = np.array([[1, 2, 3], [4, 2, 0]], np.int32), np.array([2, 5, 5], np.int32)
    hidden = np.asarray(network(sessions[:, :-1])).reshape(-1, 3)
    network.output_bias.embeddings.assign(np.linspace(-1, 1, 6, dtype=np.float32)[:, None])
    weights, bias = (
        np.asarray(network.output_items.embeddings),
        np.asarray(network.output_bias.embeddings)[:, 0],
    )
    targets = sessions[:, 1:].ravel()  # [2, 3, 2, 0]: the last is padding
    sampled = np.r_[targets, negatives]  # columns [2, 3, 2, 0, 2, 5, 5]
    allowed = {0: [0, 1, 5, 6], 1: [1, 0, 2, 4, 5, 6], 2: [2, 1, 5, 6]}  # own column first
    expected = np.mean(
        [
            np.log(np.exp(hidden[i] @ weights[sampled[cols]].T + bias[sampled[cols]]).sum())
            - (hidden[i] @ weights[targets[i]] + bias[targets[i]])
            for i, cols in allowed.items()
        ]
    )
    loss, count = network.sampled_loss(sessions, negatives, training=False)
    assert float(count) == 3
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_bpr_max_on_one_target_position_is_the_formula_over_the_negatives_only():
    network = GRU4RecNetwork(n_items=5, dim=3, gru_loss="bpr_max", gru_bpreg=0.5)
    sessions, negatives = np.array([[1, 2]], np.int32), np.array([3, 2, 4, 4], np.int32)
    hidden = np.asarray(network(sessions[:, :-1])).reshape(3)
    network.output_bias.embeddings.assign(np.linspace(-1, 1, 6, dtype=np.float32)[:, None])
    weights, bias = (
        np.asarray(network.output_items.embeddings),
        np.asarray(network.output_bias.embeddings)[:, 0],
    )
    positive = hidden @ weights[2] + bias[2]  # target item 2 (columns: [2, 3, 2, 4, 4])
    scores = hidden @ weights[[3, 4, 4]].T + bias[[3, 4, 4]]  # negatives: not the copy of item 2
    softmax = np.exp(scores) / np.exp(scores).sum()
    sigmoid = 1 / (1 + np.exp(scores - positive))
    expected = -np.log((softmax * sigmoid).sum() + 1e-24) + 0.5 * (softmax * scores**2).sum()
    loss, count = network.sampled_loss(sessions, negatives, training=False)
    assert float(count) == 1
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_bpr_max_training_learns_a_sequence_pattern_beyond_popularity():
    split = synthetic_split("ci", seed=0, **SEQUENCE_ONLY)[2]
    model = GRU4Rec(dim=32, epochs=2, learning_rate=5e-3, gru_loss="bpr_max", verbose=0)
    history = model.fit(split)
    counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1)
    valid = split.valid
    popularity_hr = np.mean((counts[valid.candidates[:, 1:]] >= counts[valid.item][:, None]).sum(1) < 10)
    assert history.loss[-1] < history.loss[0]  # from log 2 (all scores 0) down
    assert max(history.valid_hr) > popularity_hr + 0.15  # seeds 0-3: 0.52..0.61; popularity 0.24


def test_zero_samples_train_on_the_batchs_other_targets_alone(ci):
    model = GRU4Rec(dim=8, epochs=1, gru_samples=0, verbose=0)
    assert model._sample(np.cumsum(np.ones(ci.n_items)), np.random.default_rng(0)).shape == (0,)
    assert np.isfinite(model.fit(ci).loss).all()


def test_default_settings_are_the_former_constants():
    config = GRU4Rec().config  # a default GRU4Rec trains exactly as before the fields existed
    assert (config.gru_loss, config.gru_samples, config.gru_sample_alpha) == ("cross_entropy", 2048, 0.75)
    assert ModelConfig().gru_bpreg == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        {"gru_loss": "bpr"},
        {"gru_samples": -1},
        {"gru_sample_alpha": -0.1},
        {"gru_sample_alpha": 1.5},
        {"gru_bpreg": -1.0},
    ],
)
def test_bad_loss_and_sampling_settings_are_refused(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=f"ModelConfig.{name} must be"):
        GRU4Rec(**bad)


def test_scores_have_the_candidate_shape_and_are_finite(trained, ci):
    users, sequences, _ = model_inputs(trained, ci, "test")
    scores = trained.score(users, sequences, ci.test.candidates)
    assert scores.shape == ci.test.candidates.shape and scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_scores_depend_only_on_the_non_padding_suffix(trained, ci):
    candidates = ci.test.candidates[:2]
    alone = trained.score(np.array([0]), np.array([[0, 0, 5, 9]]), candidates[:1])
    padded = trained.score(np.array([0, 1]), np.array([[0] * 30 + [5, 9], [3] * 32]), candidates)
    np.testing.assert_allclose(padded[:1], alone, rtol=1e-5, atol=1e-6)


def test_a_session_without_prior_items_is_scored_by_the_output_bias(trained, ci):
    candidates = ci.test.candidates[:3]
    scores = trained.score(np.arange(3), np.zeros((3, 50), int), candidates)
    bias = np.asarray(trained.network_.output_bias.embeddings)[:, 0]
    np.testing.assert_allclose(scores, bias[candidates], atol=1e-7)


def test_full_ranking_scores_match_the_gathered_candidate_scores(trained, ci):
    users, sequences, _ = model_inputs(trained, ci, "test")
    every_item = np.tile(np.arange(1, ci.n_items + 1), (5, 1))
    full = trained.score(users[:5], sequences[:5], every_item)  # one matrix product, then picked
    few = trained.score(users[:5], sequences[:5], every_item[:, :7])  # 7 output rows gathered
    np.testing.assert_allclose(few, full[:, :7], rtol=1e-5, atol=1e-6)


def test_learns_a_sequence_only_pattern_better_than_popularity_and_random():
    split = synthetic_split("ci", seed=0, **SEQUENCE_ONLY)[2]
    model = GRU4Rec(dim=32, epochs=6, learning_rate=5e-3, verbose=0)
    model.fit(split)
    counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1)
    popularity_hr = np.mean(
        (counts[split.test.candidates[:, 1:]] >= counts[split.test.item][:, None]).sum(1) < 10
    )
    hr = evaluate(model, split).hr(10)  # seeds 0-2: 0.56..0.66; popularity 0.15..0.19; random 0.10
    assert hr > 0.10 + 0.3 and hr > popularity_hr + 0.25


def test_same_seed_same_scores_and_another_seed_differs(ci):
    models = [GRU4Rec(dim=16, epochs=1, verbose=0, seed=seed) for seed in (3, 3, 4)]
    for model in models:
        model.fit(ci)
    users, sequences, _ = model_inputs(models[0], ci, "test")
    a, b, other = (model.score(users, sequences, ci.test.candidates) for model in models)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)


def test_save_and_load_give_identical_scores(trained, ci, tmp_path):
    loaded = GRU4Rec.load(trained.save(tmp_path / "gru"))
    users, sequences, _ = model_inputs(trained, ci, "test")
    np.testing.assert_array_equal(
        trained.score(users, sequences, ci.test.candidates),
        loaded.score(users, sequences, ci.test.candidates),
    )
    assert loaded.config == trained.config


def test_a_model_saved_with_the_former_n_sample_is_refused_clearly(tmp_path):
    former = {"config": asdict(GRU4Rec().config), "n_sample": 2048}  # before gru_samples existed
    network = GRU4RecNetwork(n_items=5, dim=3, hyperparameters=former)
    network(np.ones((1, 2), np.int32))
    network.save(tmp_path / "old.keras")
    with pytest.raises(ValueError, match="n_sample is now ModelConfig.gru_samples"):
        GRU4Rec.load(tmp_path / "old")


def test_loading_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        GRU4Rec.load(tmp_path / "nothing")


def test_bad_score_shapes_are_refused(trained):
    with pytest.raises(ValueError, match="score expects"):
        trained.score(np.arange(3), np.zeros((2, 5), int), np.ones((3, 4), int))


def test_unknown_item_ids_are_refused(trained, ci):
    with pytest.raises(ValueError, match="candidates must hold item ids"):
        trained.score(np.arange(1), np.zeros((1, 5), int), np.array([[1, ci.n_items + 1]]))


def test_scoring_before_fit_is_a_clear_error():
    with pytest.raises(ValueError, match="not trained"):
        GRU4Rec(**SMALL).score(np.arange(1), np.zeros((1, 5), int), np.ones((1, 4), int))
