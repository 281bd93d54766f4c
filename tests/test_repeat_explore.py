"""repeat_explore (the repeat/explore mixture), its gate's features, and the gated_first floor."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from recsys_helpers.data import preprocess
from recsys_helpers.evaluation import evaluate
from recsys_helpers.experiments import run_experiment, train
from recsys_helpers.models import (
    BEYOND_PAPER_MODELS,
    GatedFirst,
    History,
    RepeatExplore,
    SeenFirst,
    make_model,
)
from recsys_helpers.models.gate import (
    LogisticGate,
    gate_features,
    interaction_flags,
    user_repeat_stats,
    user_totals,
)
from recsys_helpers.models.repeat_explore import (
    RepeatExploreTask,
    last_occurrence,
    repeat_rate,
    training_labels,
    window_columns,
)
from recsys_helpers.protocol import event_gaps, last_events, leave_one_out
from recsys_helpers.registry import split_name
from recsys_helpers.store import ModelCache
from tests.helpers import make_events, synthetic_split

SMALL = {"dim": 16, "epochs": 1, "verbose": 0}
# Items 1..8, minutes. User 1: view 2, cart 2 (a repeat), view 3, buy 4 (new), then a day later
# view 5 and buy 5 (a repeat, the test target). User 2 repeats nothing.
ROWS = [
    (1, 2, 0, "view"), (1, 2, 1, "cart"), (1, 3, 2, "view"), (1, 4, 3, "buy"),
    (1, 5, 1443, "view"), (1, 5, 1450, "buy"),
    (2, 6, 0, "view"), (2, 7, 1, "buy"), (2, 8, 2, "view"), (2, 1, 3, "view"), (2, 3, 4, "buy"),
]  # fmt: skip


@pytest.fixture(scope="module")
def ci_split():
    return synthetic_split("ci", seed=0)[2]


@pytest.fixture(scope="module")
def trained(ci_split):
    model = make_model("repeat_explore", **SMALL)
    model.fit(ci_split)
    return model


@pytest.fixture(scope="module")
def tiny():
    return leave_one_out(preprocess(make_events(ROWS)), n_negatives=2, seed=0)


def _inputs(split, which="test", length=50):
    targets = split.targets(which)
    items, kinds = split.windows(which, length)
    return targets.user, items, kinds, split.gaps(which, length)


def _untrained(n_items: int, **overrides) -> RepeatExplore:
    """A repeat_explore network with its initial (random) weights on a catalogue of n_items."""
    model = make_model("repeat_explore", dim=8, copy_len=4, verbose=0, **overrides)
    keras.utils.set_random_seed(3)
    model.network_ = model.build_network(n_users=3, n_items=n_items)
    model.n_users_, model.n_items_ = 3, n_items
    model.user_stats_ = np.array([[0, 0, 0], [2, 1, 3], [1, 0, 1]], dtype=np.float32)
    return model


# A window per user (4 events, oldest first): none; item 3 viewed twice then 5 bought; 7 carted.
WINDOWS = np.array([[0, 0, 0, 0], [3, 5, 3, 5], [0, 0, 0, 7]])
KINDS = np.array([[0, 0, 0, 0], [1, 1, 1, 3], [0, 0, 0, 2]])
GAPS = np.array([[0, 0, 0, 0], [30.0, 2.0, 0.3, 0.1], [0, 0, 0, 5.0]], dtype=np.float32)
USERS = np.array([0, 1, 2])


# ---------------------------------------------------------------------- inputs and features
def test_event_gaps_are_hours_from_each_window_event_to_the_request(tiny):
    rows = tiny.test.row[:1]  # user 1's test buy of item 5, minute 1450
    np.testing.assert_allclose(event_gaps(tiny.events, rows, 3)[0], [1448 / 60, 1447 / 60, 7 / 60], rtol=1e-6)
    assert event_gaps(tiny.events, np.array([0]), 2).tolist() == [[0.0, 0.0]]  # a first event: padding


def test_user_counts_see_only_the_events_before_the_row_and_repeats_of_touched_items(tiny):
    # user 1 before the test buy: the cart of 2 (repeat of its view) and the buy of 4 (new); 4 items
    stats = user_repeat_stats(tiny.events, tiny.test.row[:1], tiny.n_items)
    assert stats.tolist() == [[2, 1, 4]]
    assert user_repeat_stats(tiny.events, np.array([0]), tiny.n_items).tolist() == [[0, 0, 0]]


def test_gate_features_of_a_hand_written_window():
    stats = np.array([[2, 1, 4], [0, 0, 0]], dtype=np.float32)
    items = np.array([[4, 2, 5, 5], [0, 0, 0, 0]])
    kinds = np.array([[1, 1, 1, 3], [0, 0, 0, 0]])
    gaps = np.array([[30.0, 3.0, 0.4, 0.2], [0, 0, 0, 0]], dtype=np.float32)
    x = gate_features(stats, items, kinds, gaps)
    # rate (1 + 1) / (2 + 2); two events in the session (gaps 0.2 h to the request, 0.2 h between)
    np.testing.assert_allclose(
        x[0], [0.5, np.log(3), np.log(5), 1, np.log(3), np.log(1.2), 0, 0, 1], rtol=1e-6
    )
    np.testing.assert_allclose(x[1], [0.5, 0, 0, 0, 0, 0, 0, 0, 0])  # no history at all


def test_last_occurrence_marks_one_slot_per_distinct_item_and_no_padding():
    assert last_occurrence(WINDOWS).tolist() == [
        [False] * 4,
        [False, False, True, True],
        [False, False, False, True],
    ]


def test_request_inputs_have_the_networks_shapes():
    model = _untrained(11)
    request = model.request_inputs(WINDOWS, KINDS, GAPS, model.user_stats_)
    assert {k: v.shape for k, v in request.items()} == {
        "history": (3, 4), "history_kinds": (3, 4), "history_buckets": (3, 4),
        "slots": (3, 4, 3), "gate_features": (3, 9),
    }  # fmt: skip
    # gap to the next event: 28 h, 1.7 h, 12 min, 6 min -> buckets 6 (12..48 h), 4 (0.5..2 h),
    # 3 (10..30 min), 2 (1..10 min)
    assert request["history_buckets"][1].tolist() == [6, 4, 3, 2]
    assert request["slots"][1, :, 2].tolist() == [0, 0, 1, 1]  # the last two are the request's session


def test_training_labels_point_at_the_latest_occurrence_of_a_touched_target():
    history = np.array([[3, 5, 3, 5], [0, 0, 4, 6], [0, 0, 0, 0]])
    labels = training_labels(history, np.array([3, 9, 2]), np.array([True, False, True]))
    assert labels["touched"].tolist() == [1, 0, 0] and labels["slot"].tolist() == [2, 0, 0]
    assert labels["explicit"].tolist() == [1, 0, 1]


# ---------------------------------------------------------------------- the mixture
@pytest.mark.parametrize("explore_mask", [True, False])
def test_scores_are_log_probabilities_that_sum_to_one_over_a_tiny_catalogue(explore_mask):
    model = _untrained(11, explore_mask=explore_mask)
    every_item = np.broadcast_to(np.arange(1, 12), (3, 11))
    scores = model.score(USERS, WINDOWS, every_item, KINDS, GAPS).astype(np.float64)
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-5)


def test_an_empty_window_has_gate_zero_and_scores_by_the_explore_head_alone():
    model = _untrained(11)
    heads = model.heads(USERS, WINDOWS, KINDS, GAPS)
    every_item = np.broadcast_to(np.arange(1, 12), (3, 11))
    scores = model.score(USERS, WINDOWS, every_item, KINDS, GAPS)
    assert heads["p_repeat"][0] == 0.0
    np.testing.assert_allclose(scores[0], heads["log_p_explore"][0, 1:], rtol=1e-5)


def test_the_gate_is_strictly_between_zero_and_one_for_a_window_with_events(trained, ci_split):
    p = trained.heads(*_inputs(ci_split))["p_repeat"]
    assert ((p > 0) & (p < 1)).all() and p.std() > 0


@pytest.mark.parametrize("explore_mask", [True, False])
def test_the_explore_head_masks_exactly_the_windows_items(explore_mask):
    heads = _untrained(11, explore_mask=explore_mask).heads(USERS, WINDOWS, KINDS, GAPS)
    explore, repeat = heads["log_p_explore"], heads["log_p_repeat"]
    touched = {1: {3, 5}, 2: {7}}
    for user, items in touched.items():
        masked = set(np.flatnonzero(~np.isfinite(explore[user])))
        assert masked == ({0} | items if explore_mask else {0})
        assert set(np.flatnonzero(np.isfinite(repeat[user]))) == items
        np.testing.assert_allclose(np.exp(repeat[user]).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(explore).sum(axis=1), 1.0, rtol=1e-6)


def test_factored_scoring_equals_the_direct_mixture_of_the_three_heads(trained, ci_split):
    users, items, kinds, gaps = _inputs(ci_split)
    candidates = ci_split.test.candidates
    scores = trained.score(users, items, candidates, kinds, gaps)
    assert scores.shape == candidates.shape and np.isfinite(scores).all()
    heads = trained.heads(users, items, kinds, gaps)
    touched = np.isfinite(heads["log_p_repeat"])
    direct = np.where(
        touched,
        np.log(heads["p_repeat"])[:, None] + heads["log_p_repeat"],
        np.log1p(-heads["p_repeat"])[:, None] + heads["log_p_explore"],
    )
    assert np.take_along_axis(touched, candidates, axis=1).sum() >= 20  # both branches are exercised
    np.testing.assert_allclose(scores, np.take_along_axis(direct, candidates, axis=1), atol=2e-5)


def _hand_batch(items: list[list[int]], **task_options):
    """A loss checked by hand: the task of an untrained network, a random state float[2, 8], the
    batch's items int[2, 1 + k], windows (row 0 touched item 5) and the output table and bias."""
    model = _untrained(6)
    task = RepeatExploreTask(model.network_, np.log(np.arange(1.0, 8.0)), **task_options)
    state = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    items = np.array(items, dtype=np.int32)
    history = np.array([[0, 0, 0, 5], [0, 0, 0, 0]], dtype=np.int32)
    vectors = model.network_.get_layer("output_items").embeddings.numpy()
    bias = model.network_.get_layer("output_bias").embeddings.numpy()[:, 0]
    return task, state, items, history, vectors, bias


def test_the_sampled_softmax_leaves_out_copies_of_the_target_padding_and_touched_items():
    task, state, items, history, vectors, bias = _hand_batch([[3, 5], [4, 3]])  # columns 3, 5, 4, 3
    got = task.sampled_log_softmax(state, keras.ops.convert_to_tensor(items), history).numpy()
    columns = items.ravel()
    logits = state @ vectors[columns].T + bias[columns] - np.log(columns + 1.0)
    # row 0 (target 3): its own column and item 4; item 5 is touched, the second 3 a copy
    # row 1 (target 4): every column (3 twice: the batch's samples, not copies of its target)
    expected = [
        logits[0, 0] - np.logaddexp(logits[0, 0], logits[0, 2]),
        logits[1, 2] - np.logaddexp.reduce(logits[1]),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_window_columns_marks_exactly_the_columns_holding_a_window_item():
    rng = np.random.default_rng(0)
    columns = rng.integers(0, 12, size=40).astype(np.int32)  # repeats and padding among them
    history = rng.integers(0, 15, size=(6, 7)).astype(np.int32)  # items absent from the columns too
    history[0] = 0  # an empty window marks nothing
    expected = ((columns[None, :, None] == history[:, None, :]) & (history[:, None, :] != 0)).any(axis=2)
    np.testing.assert_array_equal(
        window_columns(tf.constant(columns), tf.constant(history)).numpy(), expected
    )


# ---------------------------------------------------------------------- training and persistence
def test_a_few_epochs_beat_popularity_on_validation_hr10(ci_split):
    popularity = make_model("popularity")
    popularity.fit(ci_split)
    floor = evaluate(popularity, ci_split, "valid").hr(10)
    model = make_model("repeat_explore", dim=32, epochs=3, verbose=0)
    history = model.fit(ci_split)
    assert max(history.valid_hr) > floor + 0.15  # seen: 0.727 vs 0.414


def test_save_and_load_through_the_model_cache_give_identical_scores(trained, ci_split, tmp_path):
    cache = ModelCache(tmp_path)
    cache.save("repeat_explore", "key", trained, History(epoch=[1], loss=[0.5]))
    loaded, history = cache.load("repeat_explore", "key", RepeatExplore)
    assert history.loss == [0.5] and loaded.config == trained.config
    users, items, kinds, gaps = _inputs(ci_split)
    args = (users, items, ci_split.test.candidates, kinds)
    np.testing.assert_array_equal(trained.score(*args, gaps), loaded.score(*args, gaps))


def test_seen_first_passes_the_time_gaps_through_to_the_model_it_wraps(trained, ci_split):
    wrapped = SeenFirst(trained).remember(ci_split)
    assert wrapped.reads_gaps and 0 < evaluate(wrapped, ci_split).hr(10) <= 1  # scoring needs the gaps


# ---------------------------------------------------------------------- ablations
def test_the_fixed_gate_is_the_explicit_rows_repeat_rate():
    labels = {"explicit": np.array([1, 1, 0, 1, 0]), "touched": np.array([1, 0, 1, 0, 1])}
    assert repeat_rate(labels) == pytest.approx(1 / 3)  # views (explicit 0) do not count
    every = {"explicit": np.ones(2), "touched": np.ones(2)}
    assert repeat_rate(every) == pytest.approx(0.999)  # kept off 1, so its logit is finite


def test_a_fixed_gate_gives_every_request_the_same_untrained_probability(ci_split):
    model = make_model("repeat_explore", gate="fixed", **SMALL)
    model.fit(ci_split)
    p = model.heads(*_inputs(ci_split))["p_repeat"]
    has_window = p > 0
    assert has_window.sum() > 50 and np.ptp(p[has_window]) < 1e-6  # no request moves it
    rows = np.flatnonzero(ci_split.is_train)
    history = last_events(ci_split.events, rows, model.config.copy_len)[0]
    flags = interaction_flags(ci_split.events, ci_split.n_items)[0][rows]
    expected = repeat_rate(training_labels(history, ci_split.events["item"].to_numpy()[rows], flags))
    assert p[has_window][0] == pytest.approx(expected, rel=1e-5)


def _task_gradient(explore_loss: str, explicit: float) -> float:
    """The norm of the loss's gradient on the explore head's item table, for two new (untouched)
    training rows that are views (explicit 0) or purchases (explicit 1)."""
    model = _untrained(11)
    task = RepeatExploreTask(model.network_, np.zeros(12), explore_loss=explore_loss)
    request = model.request_inputs(WINDOWS[1:], KINDS[1:], GAPS[1:], model.user_stats_[1:])
    items = np.array([[4, 1, 2], [6, 2, 1]], dtype=np.int32)
    labels = {"touched": np.zeros(2, np.float32), "slot": np.zeros(2, np.int32), "items": items,
              "weight": np.ones(2, np.float32), "explicit": np.full(2, explicit, np.float32),
              "history": request["history"]}  # fmt: skip
    table = model.network_.get_layer("output_items").embeddings
    with tf.GradientTape() as tape:
        loss = task(labels, model.network_(request | {"items": items}, training=False))
    gradient = tape.gradient(loss, table)
    return 0.0 if gradient is None else float(tf.norm(tf.convert_to_tensor(gradient)))


def test_the_gate_reads_the_encoder_state_but_does_not_train_it():
    model = _untrained(11)
    request = model.request_inputs(WINDOWS[1:], KINDS[1:], GAPS[1:], model.user_stats_[1:])
    request["items"] = np.array([[4], [6]], dtype=np.int32)
    encoder = model.network_.get_layer("gru").trainable_variables
    gate_kernel = model.network_.get_layer("gate").kernel
    with tf.GradientTape(persistent=True) as tape:
        outputs = model.network_(request, training=False)
        gate, explore = tf.reduce_sum(outputs["gate"]), tf.reduce_sum(outputs["explore"])
    assert all(g is None for g in tape.gradient(gate, encoder))
    dim = model.config.dim  # the kernel's first rows weigh the state
    assert float(tf.norm(tape.gradient(gate, gate_kernel)[:dim])) > 0.0  # it reads the state
    assert all(g is not None for g in tape.gradient(explore, encoder))


def test_without_an_explore_term_views_no_longer_teach_the_explore_head():
    assert _task_gradient("mixture", explicit=0.0) == 0.0
    assert _task_gradient("mixture", explicit=1.0) > 0.0  # the mixture's explicit rows still do
    assert _task_gradient("softmax", explicit=0.0) > 0.0
    assert _task_gradient("bce", explicit=0.0) > 0.0
    assert _task_gradient("bpr_max", explicit=0.0) > 0.0


def test_the_bce_term_scores_each_rows_target_against_its_own_samples():
    task, state, items, history, vectors, bias = _hand_batch([[3, 5, 3], [4, 3, 1]], explore_loss="bce")
    got = task.sampled_bce(state, keras.ops.convert_to_tensor(items), history).numpy()
    logits = np.einsum("bd,bkd->bk", state, vectors[items]) + bias[items]
    softplus = np.logaddexp(0.0, logits)
    # row 0 (target 3): its sample 5 is touched and its second 3 a copy, so only the target counts;
    # row 1 (target 4): the target and both samples
    expected = [softplus[0, 0] - logits[0, 0], softplus[1].sum() - logits[1, 0]]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_bpr_max_term_ranks_each_rows_target_above_the_columns_the_softmax_keeps():
    task, state, items, history, vectors, bias = _hand_batch(
        [[3, 5], [4, 3]], explore_loss="bpr_max", bpreg=0.5
    )
    got = task.sampled_bpr_max(state, keras.ops.convert_to_tensor(items), history).numpy()
    columns = items.ravel()
    logits = state @ vectors[columns].T + bias[columns]  # no logQ correction

    def bpr_max(positive, negatives):
        weights = np.exp(negatives - negatives.max()) / np.exp(negatives - negatives.max()).sum()
        ranking = (weights / (1.0 + np.exp(negatives - positive))).sum()
        return -np.log(ranking + 1e-24) + 0.5 * (weights * negatives**2).sum()

    # row 0 (target 3): item 4 only (5 is touched, the second 3 a copy); row 1 (target 4): 3, 5, 3
    expected = [bpr_max(logits[0, 0], logits[0, [2]]), bpr_max(logits[1, 2], logits[1, [0, 1, 3]])]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_user_embedding_separates_users_with_the_same_window_and_survives_the_cache(ci_split, tmp_path):
    model = make_model("repeat_explore", user_embedding=True, **SMALL)
    model.fit(ci_split)
    assert model.network_.get_layer("user_embedding").input_dim == ci_split.n_users
    users, items, kinds, gaps = _inputs(ci_split)
    same = (np.repeat(items[:1], 2, axis=0), np.repeat(kinds[:1], 2, axis=0), np.repeat(gaps[:1], 2, axis=0))
    scores = model.score(users[:2], same[0], ci_split.test.candidates[:2][[0, 0]], same[1], same[2])
    assert not np.allclose(scores[0], scores[1])
    cache = ModelCache(tmp_path)
    cache.save("repeat_explore", "key", model, History(epoch=[1], loss=[0.5]))
    loaded, _ = cache.load("repeat_explore", "key", RepeatExplore)
    args = (users, items, ci_split.test.candidates, kinds, gaps)
    np.testing.assert_array_equal(model.score(*args), loaded.score(*args))


# ---------------------------------------------------------------------- bad parameters
def test_bad_parameters_are_one_clear_error(trained, ci_split):
    with pytest.raises(ValueError, match="view_weight must be >= 0"):
        make_model("repeat_explore", view_weight=-0.5)
    with pytest.raises(ValueError, match="copy_len <= 50"):
        make_model("repeat_explore", copy_len=60)
    with pytest.raises(ValueError, match="gate must be one of"):
        make_model("repeat_explore", gate="none")
    with pytest.raises(ValueError, match="explore_loss must be one of"):
        make_model("repeat_explore", explore_loss="bpr")
    users, items, kinds, _ = _inputs(ci_split)
    with pytest.raises(ValueError, match="pass kinds= and gaps="):
        trained.score(users, items, ci_split.test.candidates, kinds)
    with pytest.raises(ValueError, match="score expects"):
        trained.score(users, items, ci_split.test.candidates, kinds, np.zeros((3, 50), np.float32))
    with pytest.raises(ValueError, match="gated_first\\+<model>"):
        split_name("gated_first+nope")


def test_the_registry_creates_repeat_explore_and_gated_first_of_any_model():
    assert list(BEYOND_PAPER_MODELS) == ["repeat_hybrid", "repeat_explore"]
    assert split_name("gated_first+gru4rec") == ("gated_first", "gru4rec")
    gated = make_model("gated_first+repeat_explore")
    assert isinstance(gated, GatedFirst) and gated.name == "gated_first+repeat_explore"
    assert gated.inner.config.batch_size == 256  # the wrapped model keeps its own defaults


# ---------------------------------------------------------------------- gated_first
class _Poisoned:
    """Stands in for test targets: any read of them fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"gated_first read the test targets ({name})")

    def __len__(self):
        raise AssertionError("gated_first read the test targets (len)")


def test_gated_first_fits_its_gate_on_validation_targets_and_never_reads_test_targets(ci_split):
    poisoned = dataclasses.replace(ci_split, test=_Poisoned())
    model = make_model("gated_first+popularity")
    model.fit(poisoned)
    users, items, kinds, gaps = _inputs(ci_split, "valid")
    stats = user_totals(ci_split.events, ci_split.is_train, ci_split.n_users, ci_split.n_items)[users]
    expected = LogisticGate().fit(gate_features(stats, items, kinds, gaps), ci_split.valid.repeat)
    np.testing.assert_allclose(model.gate_.coef_, expected.coef_)
    assert 0.0 < model.repeat_probability(users, items, kinds, gaps).mean() < 1.0


def test_the_tested_gated_first_keeps_the_gate_of_the_selection_split(ci_split):
    selection = make_model("gated_first+popularity")
    selection.fit(ci_split)
    tested, _ = train("gated_first+popularity", ci_split)
    np.testing.assert_array_equal(tested.gate_.coef_, selection.gate_.coef_)
    with pytest.raises(ValueError, match="fits its gate on validation targets"):
        make_model("gated_first+popularity").fit(ci_split.final())


def test_a_gated_first_row_reports_no_validation_score_of_its_own(ci_split):
    table = run_experiment(ci_split, ["gated_first+popularity"], [0], verbose=0).table.set_index("model")
    assert np.isnan(table.loc["gated_first+popularity", "valid_hr@10"])
    assert 0 < table.loc["gated_first+popularity", "hr@10"] < 1


@pytest.mark.parametrize("intercept, expected", [(9.0, [1, 8, 7, 2, 3, 5]), (-9.0, [2, 3, 8, 1, 5, 7])])
def test_gated_first_puts_touched_items_first_only_for_users_its_gate_calls_repeaters(
    tiny, intercept, expected
):
    # The tested fit: user 2 (index 1) touched 6, 7, 8, 1 before its test buy of 3; popularity
    # counts: 2 twice, every other item once. A sure "repeat": the touched candidates first, the
    # latest first (1, 8, 7), then by count (2, then 3 and 5 in candidate order); a sure "new":
    # popularity's order alone.
    model, _ = train("gated_first+popularity", tiny)
    model.gate_.coef_[:] = 0.0
    model.gate_.intercept_ = intercept
    candidates = np.array([[2, 3, 8, 1, 5, 7]])
    users, items, kinds, gaps = (x[1:] for x in _inputs(tiny))
    scores = model.score(users, items, candidates, kinds, gaps)[0]
    assert candidates[0, np.argsort(-scores, kind="stable")].tolist() == expected
