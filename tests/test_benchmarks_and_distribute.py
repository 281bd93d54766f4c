import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from recsys_helpers.models import CNNHybrid
from tests.helpers import synthetic_split


@pytest.fixture(scope="module")
def ci_split():
    return synthetic_split("ci", seed=0)[2]


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("benchmarks_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forward_flops_count_the_encoder_per_user_and_the_head_per_candidate(bench):
    model = CNNHybrid(
        dim=4,
        seq_len=3,
        horizontal_heights=(1, 2),
        horizontal_filters=3,
        vertical_filters=1,
        mlp=(6,),
        event_kinds=False,  # window rows of width d (a typed window adds the 8-d kind embedding)
    )
    per_user, per_candidate = bench.forward_flops(model.build_network(n_users=5, n_items=10))
    # convolutions 3*1*4*3 + 2*2*4*3 = 84, vertical 3*1*4 = 12, projection (3*2 + 1*4)*4 = 40 multiply-adds
    assert per_user == 2 * (84 + 12 + 40)
    # head on x = [s*e, p*e] (8 wide): 8*6 + 6*1 (implicit) + 6*6 + 6*1 (explicit) multiply-adds
    assert per_candidate == 2 * (48 + 6 + 36 + 6)


def test_batch_epochs_times_cnn_hybrid_at_each_batch_size(bench):
    results = bench.batch_epochs("ci", [256, 512], epochs=1)
    assert results["batch 256"]["seconds_per_epoch"] > 0 and results["batch 512"]["examples_per_second"] > 0
    assert results["machine"]["gpus"] == [] or results["machine"]["devices"]


def test_a_scaling_point_runs_the_data_path_from_the_written_csv_in_fresh_processes(bench):
    point = bench.measured_point("ci", 1.0, epochs=1)
    shop, _, split = synthetic_split("ci", seed=0)
    assert point["raw_events"] == len(shop.events)
    assert point["interactions"] == int(split.is_train.sum()) and point["test_users"] == len(split.test)
    assert list(point["stages"]) == ["load", "preprocess", "split", "train", "evaluate"]
    assert all(stage["seconds"] >= 0 and stage["peak_rss_mb"] > 0 for stage in point["stages"].values())
    assert (
        point["epoch_seconds"] > 0 and point["evaluation_seconds"] == point["stages"]["evaluate"]["seconds"]
    )


def test_scaling_summary_fits_linear_costs_and_takes_the_larger_memory_estimate(bench):
    points = [
        {
            "interactions": n,
            "raw_events": 2 * n,
            "epoch_seconds": 1e-5 * n,
            "evaluation_seconds": 2e-6 * n,
            "stages": {"load": {"peak_rss_mb": 100 + 1e-4 * 2 * n}},
            "peak_rss_mb": 200 + 1e-3 * n,
        }
        for n in (100_000, 200_000, 400_000)
    ]
    results = {"machine": {"memory_gb": 23.5}}
    bench.summarise_scaling(results, "ci", points)
    s = results["scaling"]
    assert s["epoch_loglog_slope"] == pytest.approx(1.0) and s["evaluation_loglog_slope"] == pytest.approx(
        1.0
    )
    assert s["rss_fit_mb"] == {"base": 200, "per_million_interactions": 1000}
    after = (200 + 1e-3 * bench.RECOBELL_INTERACTIONS) / 1024
    load = (100 + 1e-4 * bench.RECOBELL_RAW_EVENTS) / 1024
    assert s["recobell_peak_rss_estimate_gb"] == round(max(after, load), 1) == round(after, 1)


def test_a_loglog_slope_of_a_linear_cost_is_one(bench):
    assert bench.loglog_slope([1e4, 1e5, 1e6], [2.0, 20.0, 200.0]) == pytest.approx(1.0)


# ---------------------------------------------------------------------- tf.distribute
TINY = {"dim": 16, "horizontal_filters": 8, "mlp": (32, 16), "epochs": 1, "verbose": 0}

# Logical CPU devices must be configured before TensorFlow initialises its devices: a fresh process.
MIRRORED = f"""
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from recsys_helpers.models import CNNHybrid
from recsys_helpers.models.trainer import LazyAdamTrainer, weighted_bce
from tests.helpers import synthetic_split

split = synthetic_split("ci", seed=0)[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
model = CNNHybrid(**{TINY!r})
history = model.fit(split, strategy=strategy)
items, kinds = split.windows("test", 5)
scores = model.score(split.test.user[:7], items[:7], split.test.candidates[:7], kinds[:7])
try:
    outside = CNNHybrid(**{TINY!r}).build_network(10, 20)
    LazyAdamTrainer(outside, weighted_bce({{"implicit": 1.0}}), strategy=strategy)
    refused = ""
except ValueError as error:
    refused = str(error)
copies = [[c.numpy() for c in w.value.values] for w in model.network_.weights]
print(json.dumps({{
    "replicas": strategy.num_replicas_in_sync,
    "copy_difference": max(float(np.abs(c - w[0]).max()) for w in copies for c in w),
    "loss": history.loss,
    "shape": list(scores.shape),
    "finite": bool(np.isfinite(scores).all()),
    "refused": refused,
}}))
"""


@pytest.fixture(scope="module")
def mirrored_run():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_over_two_cpu_devices_trains_to_a_finite_loss_and_scores(mirrored_run):
    assert mirrored_run["replicas"] == 2
    assert np.isfinite(mirrored_run["loss"]).all() and mirrored_run["loss"][0] > 0
    assert mirrored_run["shape"] == [7, 100] and mirrored_run["finite"]


def test_the_lazy_update_keeps_the_mirrored_copies_equal(mirrored_run):
    assert mirrored_run["copy_difference"] == 0.0


def test_a_network_built_outside_the_strategy_scope_is_refused_with_the_fix(mirrored_run):
    assert "strategy.scope()" in mirrored_run["refused"]


def test_the_default_strategy_trains_exactly_as_no_strategy(ci_split):
    scores = []
    for strategy in (None, tf.distribute.get_strategy()):
        model = CNNHybrid(**TINY)
        model.fit(ci_split, strategy=strategy)
        items, kinds = ci_split.windows("test", 5)
        scores.append(model.score(ci_split.test.user[:9], items[:9], ci_split.test.candidates[:9], kinds[:9]))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_optimizer_adam_is_plain_adam_not_the_lazy_update(ci_split):
    scores = []
    for optimizer in ("lazy_adam", "adam"):
        model = CNNHybrid(**TINY, optimizer=optimizer)
        model.fit(ci_split)
        items, kinds = ci_split.windows("test", 5)
        scores.append(model.score(ci_split.test.user[:9], items[:9], ci_split.test.candidates[:9], kinds[:9]))
    assert np.abs(scores[0] - scores[1]).max() > 1e-6


def test_the_scoring_benchmark_runs_the_default_typed_window(bench, ci_split, capsys):
    model = CNNHybrid(epochs=1, dim=8, verbose=0)  # the defaults: a distinct window with event kinds
    model.fit(ci_split)
    results = {}
    bench.scoring(model, ci_split, results, n_users=64, naive_users=32, full_users=16)
    naive = results["naive scoring (full network per row)"]
    assert naive["max_abs_score_difference"] < 1e-4  # the naive graph scores what the factored one does
    assert results["score 64 users x 1,000 candidates"]["seconds"] > 0
    assert any(key.startswith("full ranking") for key in results)


def test_the_training_and_scoring_rows_of_repeat_explore_read_its_time_gaps(bench, ci_split):
    results = {}
    trained = bench.training(ci_split, ["repeat_explore"], results, peak_gflops=100.0)
    row = results["train repeat_explore"]
    assert row["examples_per_epoch"] == ci_split.is_train.sum() and row["achieved_gflops"] is None
    model = trained["repeat_explore"]
    scores = bench.score_candidates(model, ci_split, results, 64, label="repeat_explore: ")
    assert scores.shape == (64, ci_split.test.candidates.shape[1]) and np.isfinite(scores).all()
    assert results["score repeat_explore: 64 users x 1,000 candidates"]["seconds"] > 0
