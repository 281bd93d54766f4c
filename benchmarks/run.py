"""Performance report: data pipeline, training, scoring, the machine's limit and the scaling curve.

    python benchmarks/run.py            # synthetic RetailRocket scale (the paper's Table 1 size)
    python benchmarks/run.py --quick    # the course preset and a small scaling curve, < 2 minutes

Prints a table as it goes and writes benchmarks/results/<date>[-quick].json with the machine's
description, and <date>[-quick].png with the scaling curve. The full run ends with the data path
and cnn_hybrid measured directly at Recobell's size (the synthetic `recobell` preset). What each
number means: benchmarks/README.md. Targets (2 CPU cores): cnn_hybrid <= 20 s per epoch at batch 1024; ranking
1,000 candidates for 36,751 users <= 8 s and >= 10x faster than the naive way; ALS <= 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from recsys_helpers.data import generate_shop, preprocess  # noqa: E402
from recsys_helpers.data.loaders import load_retailrocket  # noqa: E402
from recsys_helpers.evaluation import count_beating, evaluate  # noqa: E402
from recsys_helpers.models import make_model  # noqa: E402
from recsys_helpers.protocol import leave_one_out  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LEARNED = ["mf", "gru4rec", "caser", "rnn_hybrid", "ite", "cnn_hybrid", "repeat_hybrid", "repeat_explore"]
QUICK_MODELS = ["mf", "caser", "cnn_hybrid"]
PAPER_USERS = 36_751  # users ranked in the paper's RetailRocket evaluation
RECOBELL_RAW_EVENTS = 14_500_000
RECOBELL_INTERACTIONS = 2_285_261 + 52_786  # the paper's Table 1, after the >= 5 filter
# Scaling curve: the synthetic shop's users, casual visitors and items all multiplied by these
# factors of a preset, so density stays the same and only the size changes.
SCALING = {"full": ("retailrocket", (0.125, 0.5, 2.0, 5.0)), "quick": ("course", (0.5, 1.0, 2.0, 3.0))}


# ---------------------------------------------------------------------- the machine
def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which a new program starts afresh (ru_maxrss
    would carry over the parent's peak into a subprocess on Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    import tensorflow as tf

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    field = {
        line.split(":")[0].strip(): line.split(":", 1)[1].strip()
        for line in cpuinfo.splitlines()
        if ":" in line
    }
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    memory = Path("/proc/meminfo").read_text().split()[1] if Path("/proc/meminfo").exists() else "0"
    return {
        "cores": os.cpu_count(),
        "cpu": field.get("model name", platform.processor() or platform.machine()),
        "cpu_flags": sorted(set(field.get("flags", "").split()) & set(wanted)),
        "memory_gb": round(int(memory) / 2**20, 1),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": __import__("keras").__version__,
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "load_average_at_start": list(os.getloadavg()),
    }


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of the best of `repeats` float32 n x n tf.matmul calls (2 n^3 FLOPs each)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    square = tf.function(lambda x: tf.reduce_sum(tf.matmul(x, x)))
    square(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        square(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# ---------------------------------------------------------------------- FLOPs
def forward_flops(network) -> tuple[float, float]:
    """(per user, per candidate) forward FLOPs of a built network, counted from its layer shapes.

    2 x the multiply-adds of convolutions, dense layers, recurrent cells and output dot products;
    embedding lookups and element-wise ops are not counted. Per user: the sequence encoder (run
    once per user, shared by its candidates). Per candidate: the head or the output dot product.
    """
    import keras

    from recsys_helpers.models.layers import CaserEncoder, ImplicitExplicitHead

    per_user = per_candidate = 0.0
    sequence = network.input.get("sequence")  # L, the recent items a sequence encoder reads
    length = 0 if sequence is None else sequence.shape[1]
    for layer in network.layers:
        if isinstance(layer, CaserEncoder):
            for conv in layer.horizontal:
                height = conv.kernel.shape[0]
                per_user += 2 * (length - height + 1) * np.prod(conv.kernel.shape)
            if layer.vertical:
                per_user += 2 * np.prod(layer.vertical_kernel.shape) * layer.dim
            per_user += 2 * np.prod(layer.project.kernel.shape)
        elif isinstance(layer, keras.layers.LSTM | keras.layers.GRU):
            cell = layer.cell
            per_user += 2 * length * (np.prod(cell.kernel.shape) + np.prod(cell.recurrent_kernel.shape))
        elif isinstance(layer, ImplicitExplicitHead):
            dense = [*layer.mlp, layer.implicit, layer.explicit_hidden, layer.explicit]
            per_candidate += sum(2 * np.prod(d.kernel.shape) for d in dense)
        elif layer.name == "output_items":
            per_candidate += 2 * layer.embeddings.shape[1]
    return float(per_user), float(per_candidate)


def training_flops_per_example(model, split) -> float | None:
    """FLOPs of one training row (a positive or a negative): 3 x forward (backward ~ 2 x forward).

    Neural models: per_user / (1 + negatives) + per_candidate, since a user's sequence is encoded
    once for its 1 + negatives rows. GRU4Rec: one GRU step plus logits against the batch's
    targets and its shared negatives per target position. ALS and repeat_explore: not counted (None).
    """
    if model.name == "repeat_explore":
        return None
    if hasattr(model, "training_rows"):
        per_user, per_candidate = forward_flops(model.network_)
        return 3 * (per_user / (1 + model.config.negatives) + per_candidate)
    if model.name == "gru4rec":
        cell, dim = model.network_.gru.cell, model.config.dim
        step = 2 * (np.prod(cell.kernel.shape) + np.prod(cell.recurrent_kernel.shape))
        return float(3 * (step + 2 * dim * (model.config.batch_size + model.config.gru_samples)))
    return None


def training_examples(model, split) -> int:
    """Rows per epoch: positives x (1 + negatives) for the neural models, target positions for
    GRU4Rec, training events for repeat_explore (each a positive), training interactions for ALS."""
    if model.name == "repeat_explore":
        return int(split.is_train.sum())
    if hasattr(model, "training_rows"):
        return len(model.training_rows(split)) * (1 + model.config.negatives)
    if model.name == "gru4rec":
        return int(np.count_nonzero(model.training_sequences(split)[:, 1:]))
    return int(split.is_train.sum())


# ---------------------------------------------------------------------- measurements
def report(results: dict, name: str, seconds: float, **extra) -> None:
    results[name] = {"seconds": round(seconds, 3), "peak_rss_mb": round(peak_rss_mb())} | extra
    results[name]["load_average"] = round(os.getloadavg()[0], 2)  # > 2 on 2 cores: shared, slower
    print(f"{name:46s} {seconds:8.2f} s   peak RSS {results[name]['peak_rss_mb']:7.0f} MB", flush=True)


def timed(results: dict, name: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    report(results, name, time.perf_counter() - start)
    return out


def data_pipeline(scale: str, results: dict, folder: Path):
    shop = timed(results, f"synthesize ({scale})", generate_shop, scale, 0)
    timed(results, "write events.csv", shop.write, folder / "shop")
    events = timed(results, "load events.csv", load_retailrocket, folder / "shop")
    data = timed(results, "preprocess (>= 5 interactions, dense ids)", preprocess, events)
    split = timed(results, "leave-one-out + 999 negatives", leave_one_out, data)
    total = sum(results[k]["seconds"] for k in list(results)[-5:])
    results["data pipeline total"] = {"seconds": round(total, 2)}
    print(f"{'data pipeline total':46s} {total:8.2f} s", flush=True)
    return split


def big_load(results: dict, folder: Path, rows: int = 2_756_101) -> None:
    """A RetailRocket-sized events.csv: the synthetic shop plus casual one-to-four-event visitors."""
    shop = generate_shop("retailrocket", 1, n_casual_users=950_000)
    shop.events = shop.events.iloc[:rows]
    shop.write(folder / "big")
    name = f"load a {len(shop.events):,}-row events.csv"
    loaded = timed(results, name, load_retailrocket, folder / "big")
    results[name]["rows"] = len(loaded)


def training(split, models: list[str], results: dict, peak_gflops: float) -> dict:
    """s/epoch of each model (the fastest of 2 epochs: the first also traces), examples/s and the
    fraction of the machine's matmul peak that the training reaches. Returns the trained models."""
    trained = {}
    for name in models:
        model = make_model(name, epochs=2, verbose=0, patience=2)
        history = model.fit(split)
        per_epoch = min(history.seconds)
        rows = training_examples(model, split)
        flops = training_flops_per_example(model, split)
        achieved = flops * rows / per_epoch / 1e9 if flops else None
        results[f"train {name}"] = {
            "seconds_per_epoch": round(per_epoch, 2),
            "first_epoch_seconds": round(history.seconds[0], 2),
            "examples_per_epoch": rows,
            "examples_per_second": round(rows / per_epoch),
            "mflop_per_example": round(flops / 1e6, 4) if flops else None,
            "achieved_gflops": round(achieved, 1) if achieved else None,
            "fraction_of_peak": round(achieved / peak_gflops, 3) if achieved else None,
            "load_average": round(os.getloadavg()[0], 2),
        }
        share = f"{achieved:6.1f} GFLOP/s = {achieved / peak_gflops:5.1%} of peak" if achieved else ""
        print(f"train {name:40s} {per_epoch:8.2f} s/epoch ({rows:,} rows) {share}", flush=True)
        trained[name] = model
    return trained


def scoring(model, split, results: dict, n_users: int, naive_users: int, full_users: int) -> None:
    """Rank 1,000 candidates for n_users (test users repeated to the paper's user count), the same
    with the plain network per (user, candidate) row on naive_users (extrapolated), and full
    ranking over all items for full_users (extrapolated to all test users)."""
    factored = score_candidates(model, split, results, n_users)
    users = np.resize(split.test.user, naive_users)
    items, kinds = split.windows("test", 50)
    window = model.window_inputs(np.resize(items, (naive_users, 50)), np.resize(kinds, (naive_users, 50)))
    candidates = np.resize(split.test.candidates, (naive_users, split.test.candidates.shape[1]))
    name = f"score {n_users:,} users x 1,000 candidates"

    naive_scores(model, users[:16], {k: v[:16] for k, v in window.items()}, candidates[:16])  # trace
    start = time.perf_counter()
    plain = naive_scores(model, users, window, candidates)
    naive_seconds = (time.perf_counter() - start) * n_users / naive_users
    ratio = naive_seconds / results[name]["seconds"]
    difference = float(np.abs(plain - factored[:naive_users]).max())
    results["naive scoring (full network per row)"] = {
        "seconds_extrapolated": round(naive_seconds, 2),
        "users_timed": naive_users,
        "speedup_of_factored": round(ratio, 1),
        "max_abs_score_difference": difference,
    }
    label = f"naive scoring (extrapolated from {naive_users:,} users)"
    print(
        f"{label:46s} {naive_seconds:8.2f} s   factored is {ratio:.1f}x faster (max |diff| {difference:.1e})",
        flush=True,
    )

    ptr, excluded = split.excluded_items("test")
    all_items = np.broadcast_to(np.arange(1, split.n_items + 1), (full_users, split.n_items))
    start = time.perf_counter()
    for s in range(0, full_users, 256):
        e = min(s + 256, full_users)
        scores = model.score(split.test.user[s:e], items[s:e], all_items[: e - s], kinds[s:e])
        count_beating(scores, split.test.item[s:e], ptr[s : e + 1], excluded)
    seconds = (time.perf_counter() - start) * len(split.test) / full_users
    results[f"full ranking, {len(split.test):,} test users x {split.n_items:,} items"] = {
        "seconds_extrapolated": round(seconds, 2),
        "users_timed": full_users,
    }
    print(
        f"{'full ranking of all test users (from ' + f'{full_users:,})':46s} {seconds:8.2f} s "
        f"({len(split.test):,} x {split.n_items:,} items, extrapolated)",
        flush=True,
    )


def score_candidates(model, split, results: dict, n_users: int, label: str = "") -> np.ndarray:
    """Rank 1,000 candidates for n_users (test users repeated to the paper's user count), with the
    event kinds of each window (typed models read them; the others ignore them) and, for a model
    that reads them (repeat_explore), the time gaps."""
    users = np.resize(split.test.user, n_users)
    items, kinds = split.windows("test", 50)
    sequences, kinds = np.resize(items, (n_users, 50)), np.resize(kinds, (n_users, 50))
    candidates = np.resize(split.test.candidates, (n_users, split.test.candidates.shape[1]))
    extra = {"gaps": np.resize(split.gaps("test", 50), (n_users, 50))} if model.reads_gaps else {}
    model.score(
        users[:256], sequences[:256], candidates[:256], kinds[:256], **{k: v[:256] for k, v in extra.items()}
    )
    name = f"score {label}{n_users:,} users x 1,000 candidates"
    return timed(results, name, model.score, users, sequences, candidates, kinds, **extra)


def naive_scores(model, users, window: dict, candidates, users_per_call: int = 16) -> np.ndarray:
    """The naive way: the plain network once per (user, candidate) row, the user id and the
    window (`model.window_inputs`) repeated for every candidate, so the sequence encoder runs
    1,000 times per user."""
    import tensorflow as tf

    if getattr(model, "_naive_fn", None) is None:
        model._naive_fn = tf.function(lambda b: model._forward(b, factored=False), reduce_retracing=True)
    out = []
    for s in range(0, len(users), users_per_call):
        block = candidates[s : s + users_per_call]
        rows = slice(s, s + users_per_call)
        batch = {name: np.repeat(values[rows], block.shape[1], axis=0) for name, values in window.items()}
        batch |= {"user": np.repeat(users[rows], block.shape[1]), "items": block.reshape(-1, 1)}
        scores = model._naive_fn({k: np.asarray(v, dtype=np.int32) for k, v in batch.items()})
        out.append(scores.numpy().reshape(block.shape))
    return np.concatenate(out)


# ---------------------------------------------------------------------- scaling curve
def write_shop(preset: str, factor: float, folder: str) -> None:
    """Generate the synthetic shop of `preset` with users, casual visitors and items x factor and
    write it in the RetailRocket format (in this process: generating is not what is measured)."""
    from recsys_helpers.data.synthetic import shop_config

    base = shop_config(preset)
    sizes = {k: max(1, round(getattr(base, k) * factor)) for k in ("n_users", "n_casual_users", "n_items")}
    generate_shop(preset, 0, **sizes).write(folder)


def scaling_point(folder: str, epochs: int = 2) -> dict:
    """The real data path on a written shop, in a fresh process so its peak RSS is the path's own:
    load events.csv, preprocess, leave-one-out with 999 negatives, train cnn_hybrid (the fastest
    of `epochs` epochs), rank 1,000 candidates per test user. Seconds and peak RSS per stage."""
    stages: dict = {}

    def stage(name: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        stages[name] = {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak_rss_mb())}
        return out

    events = stage("load", load_retailrocket, folder)
    data = stage("preprocess", preprocess, events)
    raw_events = len(events)
    del events
    split = stage("split", leave_one_out, data)
    del data
    model = make_model("cnn_hybrid", epochs=epochs, verbose=0, patience=epochs)
    history = stage("train", model.fit, split)
    stage("evaluate", evaluate, model, split, "test")
    return {
        "raw_events": raw_events,
        "interactions": int(split.is_train.sum()),
        "users": split.n_users,
        "test_users": len(split.test),
        "items": split.n_items,
        "epoch_seconds": round(min(history.seconds), 3),
        "evaluation_seconds": stages["evaluate"]["seconds"],
        "stages": stages,
        # The kernel's RSS counters are approximate (VmHWM read later can be a few MB lower).
        "peak_rss_mb": max(round(peak_rss_mb()), *(s["peak_rss_mb"] for s in stages.values())),
    }


def measured_point(preset: str, factor: float, epochs: int = 2) -> dict:
    """write_shop here, then scaling_point in a fresh process; the point's JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        write_shop(preset, factor, tmp)
        out = subprocess.run(
            [sys.executable, __file__, "--scaling-point", tmp, str(epochs)], capture_output=True, text=True
        )
        if out.returncode:
            raise RuntimeError(f"scaling point x{factor} of {preset!r} failed:\n{out.stderr[-2000:]}")
        return {"preset": preset, "factor": factor} | json.loads(out.stdout.strip().splitlines()[-1])


def loglog_slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def scaling(results: dict, mode: str) -> list[dict]:
    """cnn_hybrid's epoch and evaluation time at 4 sizes, each in a fresh process; log-log slopes
    (1 = linear) and a linear fit of peak RSS against raw events, extrapolated to Recobell."""
    preset, factors = SCALING[mode]
    points = []
    for factor in factors:
        point = measured_point(preset, factor)
        points.append(point)
        print(
            f"scaling x{factor:<6} {point['interactions']:>10,} interactions: "
            f"epoch {point['epoch_seconds']:7.2f} s, evaluation {point['evaluation_seconds']:6.2f} s "
            f"({point['test_users']:,} users), "
            f"peak RSS {point['peak_rss_mb']:,} MB",
            flush=True,
        )
    summarise_scaling(results, preset, points)
    return points


def summarise_scaling(results: dict, preset: str, points: list[dict]) -> None:
    """Log-log slopes of epoch and evaluation time against interactions (1 = linear), and a peak
    memory estimate at Recobell's size from two linear fits: the CSV load grows with raw events,
    everything after it (split, training, evaluation) with the interactions kept by the filter.
    The estimate is the larger of the two at Recobell's raw events and Table 1's interactions."""
    x = [p["interactions"] for p in points]
    epoch_slope = loglog_slope(x, [p["epoch_seconds"] for p in points])
    eval_slope = loglog_slope(x, [p["evaluation_seconds"] for p in points])
    raw = [p["raw_events"] for p in points]
    load_per_event, load_base = np.polyfit(raw, [p["stages"]["load"]["peak_rss_mb"] for p in points], 1)
    per_interaction, base = np.polyfit(x, [p["peak_rss_mb"] for p in points], 1)
    load_at = float(load_base + load_per_event * RECOBELL_RAW_EVENTS)
    after_at = float(base + per_interaction * RECOBELL_INTERACTIONS)
    results["scaling"] = {
        "model": "cnn_hybrid",
        "preset": preset,
        "points": points,
        "epoch_loglog_slope": round(epoch_slope, 3),
        "evaluation_loglog_slope": round(eval_slope, 3),
        "load_rss_fit_mb": {"base": round(load_base), "per_million_raw_events": round(load_per_event * 1e6)},
        "rss_fit_mb": {"base": round(base), "per_million_interactions": round(per_interaction * 1e6)},
        "recobell_raw_events": RECOBELL_RAW_EVENTS,
        "recobell_interactions": RECOBELL_INTERACTIONS,
        "recobell_load_rss_estimate_gb": round(load_at / 1024, 1),
        "recobell_after_load_rss_estimate_gb": round(after_at / 1024, 1),
        "recobell_peak_rss_estimate_gb": round(max(load_at, after_at) / 1024, 1),
    }
    print(f"epoch time vs interactions: log-log slope {epoch_slope:.2f} (1 = linear)", flush=True)
    print(f"evaluation time vs interactions: log-log slope {eval_slope:.2f}", flush=True)
    print(
        f"peak RSS of the load ~ {load_base:,.0f} MB + {load_per_event * 1e6:,.0f} MB per million raw "
        f"events; of the whole path ~ {base:,.0f} MB + {per_interaction * 1e6:,.0f} MB per million "
        f"interactions -> Recobell ({RECOBELL_RAW_EVENTS / 1e6:.1f}M raw events, "
        f"{RECOBELL_INTERACTIONS / 1e6:.2f}M interactions): ~{max(load_at, after_at) / 1024:.1f} GB "
        f"(machine: {results['machine']['memory_gb']} GB)",
        flush=True,
    )


def recobell_size(results: dict) -> dict:
    """The data path and cnn_hybrid measured directly at Recobell's size: the synthetic `recobell`
    preset (Table 1's users, items and events after the filter, ~14.5M raw events), written as CSV
    here and loaded, split, trained (2 epochs) and evaluated by a fresh process."""
    point = measured_point("recobell", 1.0)
    results["recobell size"] = point
    print(
        f"recobell size: {point['raw_events']:,} raw events -> {point['users']:,} users, "
        f"{point['items']:,} items, {point['interactions']:,} training interactions, "
        f"{point['test_users']:,} test users",
        flush=True,
    )
    for name, stage in point["stages"].items():
        print(f"  {name:12s} {stage['seconds']:8.2f} s   peak RSS {stage['peak_rss_mb']:7,} MB", flush=True)
    print(
        f"  cnn_hybrid {point['epoch_seconds']:.1f} s/epoch; peak RSS {point['peak_rss_mb'] / 1024:.1f} GB "
        f"of the machine's {results['machine']['memory_gb']} GB",
        flush=True,
    )
    return point


def plot_scaling(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["scaling"]
    points = s["points"]
    x = np.array([p["interactions"] for p in points], dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    epoch = np.array([p["epoch_seconds"] for p in points])
    evaluation = np.array([p["evaluation_seconds"] for p in points])
    left.loglog(x, epoch, "o-", label=f"training epoch: slope {s['epoch_loglog_slope']:.2f}")
    left.loglog(
        x, evaluation, "o-", label=f"evaluation, 1,000 candidates: slope {s['evaluation_loglog_slope']:.2f}"
    )
    left.loglog(x, epoch[0] * x / x[0], ":", color="grey", label="linear (slope 1)")
    left.set(xlabel="training interactions", ylabel="seconds", title="cnn_hybrid cost vs data size")
    left.legend(fontsize=8)
    fit = s["rss_fit_mb"]
    line = np.linspace(0, s["recobell_interactions"], 50)
    right.plot(x / 1e6, [p["peak_rss_mb"] / 1024 for p in points], "o", label="measured peak RSS")
    right.plot(
        line / 1e6,
        (fit["base"] + fit["per_million_interactions"] * line / 1e6) / 1024,
        ":",
        label="linear fit",
    )
    right.axvline(s["recobell_interactions"] / 1e6, color="grey", lw=0.8, label="Recobell (Table 1)")
    estimate = f"Recobell estimate: ~{s['recobell_peak_rss_estimate_gb']} GB"
    if "recobell size" in results:
        point = results["recobell size"]
        right.plot(
            point["interactions"] / 1e6,
            point["peak_rss_mb"] / 1024,
            "*",
            ms=12,
            label="measured at Recobell size",
        )
        estimate += f", measured {point['peak_rss_mb'] / 1024:.1f} GB"
    right.text(0.03, 0.85, estimate, transform=right.transAxes)
    right.set(
        xlabel="training interactions (millions)", ylabel="peak RSS (GB)", title="memory of the data path"
    )
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------- batch sizes (gpu.sh)
def batch_epochs(scale: str, batches: list[int], epochs: int = 2) -> dict:
    """cnn_hybrid s/epoch at several batch sizes (rows per step, learning rate unchanged) on
    TensorFlow's default device (the GPU when one is visible): the fastest of `epochs` epochs."""
    import tensorflow as tf

    results: dict = {"machine": machine(), "scale": scale, "model": "cnn_hybrid"}
    results["machine"]["gpus"] = [
        tf.config.experimental.get_device_details(g) for g in tf.config.list_physical_devices("GPU")
    ]
    print(f"machine: {results['machine']}", flush=True)
    split = leave_one_out(preprocess(generate_shop(scale, 0).canonical_events()))
    for batch in batches:
        model = make_model("cnn_hybrid", epochs=epochs, patience=epochs, verbose=0, batch_size=batch)
        history = model.fit(split)
        per_epoch, rows = min(history.seconds), training_examples(model, split)
        results[f"batch {batch}"] = {
            "seconds_per_epoch": round(per_epoch, 2),
            "first_epoch_seconds": round(history.seconds[0], 2),
            "examples_per_second": round(rows / per_epoch),
            "valid_hr@10_last_epoch": round(history.valid_hr[-1], 4) if history.valid_hr else None,
        }
        print(f"cnn_hybrid batch {batch:6d}: {per_epoch:7.2f} s/epoch ({rows:,} rows)", flush=True)
    return results


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="course scale, 3 models, small scaling curve")
    parser.add_argument("--models", default=None, help="comma-separated models to train")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling curve and Recobell size")
    parser.add_argument("--batches", help="only cnn_hybrid s/epoch at these batch sizes, e.g. 1024,8192")
    parser.add_argument("--scale", default="retailrocket", help="synthetic preset for --batches")
    parser.add_argument("--json", type=Path, help="where --batches writes its JSON")
    parser.add_argument("--scaling-point", nargs=2, metavar=("DIR", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_point:
        print(json.dumps(scaling_point(args.scaling_point[0], int(args.scaling_point[1]))))
        return
    if args.batches:
        results = batch_epochs(args.scale, [int(b) for b in args.batches.split(",")])
        out = args.json or RESULTS / f"{dt.date.today().isoformat()}-batches.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {out}")
        return
    began = time.perf_counter()
    results: dict = {"machine": machine(), "mode": "quick" if args.quick else "full"}
    print(f"machine: {results['machine']}", flush=True)
    peak = matmul_peak(2048 if args.quick else 4096)
    results["matmul peak (float32, GFLOP/s)"] = round(peak, 1)
    print(f"{'matmul peak (float32 square tf.matmul)':46s} {peak:8.1f} GFLOP/s", flush=True)
    scale = "course" if args.quick else "retailrocket"
    with tempfile.TemporaryDirectory() as tmp:
        split = data_pipeline(scale, results, Path(tmp))
        if not args.quick:
            big_load(results, Path(tmp))
    models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else LEARNED)
    trained = training(split, models, results, peak)
    n_users = len(split.test) if args.quick else PAPER_USERS
    if "cnn_hybrid" in trained:
        scoring(trained["cnn_hybrid"], split, results, n_users, 256 if args.quick else 2048, 256)
    if "repeat_hybrid" in trained:  # the copy path's features are computed in the scoring graph
        score_candidates(trained["repeat_hybrid"], split, results, n_users, label="repeat_hybrid: ")
    if "repeat_explore" in trained:  # the explore head's normaliser runs over the whole catalogue
        score_candidates(trained["repeat_explore"], split, results, n_users, label="repeat_explore: ")
    if not args.no_scaling:
        scaling(results, "quick" if args.quick else "full")
    if not (args.quick or args.no_scaling):
        recobell_size(results)
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    RESULTS.mkdir(exist_ok=True)
    suffix = ("-quick" if args.quick else "") + ("-models" if args.no_scaling else "")
    out = RESULTS / f"{dt.date.today().isoformat()}{suffix}.json"
    out.write_text(json.dumps(results, indent=1))
    if "scaling" in results:
        plot_scaling(results, out.with_suffix(".png"))
    print(f"total {results['total_seconds']:.0f} s; wrote {out} (and its .png scaling curve, if measured)")


if __name__ == "__main__":
    main()
