"""Performance report: data pipeline, training s/epoch and evaluation time, on this machine.

    python benchmarks/run.py            # synthetic RetailRocket scale (paper's Table 1 size)
    python benchmarks/run.py --quick    # the course preset, in about a minute

Prints a table and writes benchmarks/results/<date>[-quick].json with the machine's description.
Targets (2 CPU cores): synthesize + load + preprocess + split < 20 s; loading a 2.76M-row
events.csv < 30 s; cnn_hybrid < 25 s per epoch at batch 1024; ranking 1,000 candidates for
36,751 users < 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from recsys_helpers.data import generate_shop, preprocess  # noqa: E402
from recsys_helpers.data.loaders import load_retailrocket  # noqa: E402
from recsys_helpers.models import make_model  # noqa: E402
from recsys_helpers.protocol import leave_one_out  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LEARNED = ["mf", "gru4rec", "caser", "rnn_hybrid", "ite", "cnn_hybrid"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    import tensorflow as tf

    flags = (
        Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": sorted(
            {f for f in flags.split() if f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16")}
        ),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
    }


def timed(results: dict, name: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    results[name] = {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak_rss_mb())}
    print(
        f"{name:42s} {results[name]['seconds']:8.2f} s   peak RSS {results[name]['peak_rss_mb']:7.0f} MB",
        flush=True,
    )
    return out


def data_pipeline(scale: str, results: dict, folder: Path):
    shop = timed(results, f"synthesize ({scale})", generate_shop, scale, 0)
    timed(results, "write events.csv", shop.write, folder / "shop")
    events = timed(results, "load events.csv", load_retailrocket, folder / "shop")
    data = timed(results, "preprocess (>= 5 interactions, dense ids)", preprocess, events)
    split = timed(results, "leave-one-out + 999 negatives", leave_one_out, data)
    total = sum(results[k]["seconds"] for k in list(results)[-5:])
    results["data pipeline total"] = {"seconds": round(total, 2)}
    print(f"{'data pipeline total':42s} {total:8.2f} s", flush=True)
    return split


def big_load(results: dict, folder: Path, rows: int = 2_756_101) -> None:
    """A RetailRocket-sized events.csv: the synthetic shop plus casual one-to-four-event visitors."""
    shop = generate_shop("retailrocket", 1, n_casual_users=950_000)
    events = shop.events.iloc[:rows]
    shop.events = events
    shop.write(folder / "big")
    loaded = timed(results, f"load a {len(events):,}-row events.csv", load_retailrocket, folder / "big")
    results[f"load a {len(events):,}-row events.csv"]["rows"] = len(loaded)


def training(split, models: list[str], results: dict, epochs: int = 2) -> None:
    """s/epoch of each model: the fastest of `epochs` epochs (the first one also traces the graph)."""
    for name in models:
        model = make_model(name, epochs=epochs, verbose=0, patience=epochs)
        history = model.fit(split)
        per_epoch = min(history.seconds)
        positives = (
            len(model.training_rows(split)) if hasattr(model, "training_rows") else int(split.is_train.sum())
        )
        rows = positives * (1 + model.config.negatives) if hasattr(model, "training_rows") else positives
        results[f"train {name}"] = {
            "seconds_per_epoch": round(per_epoch, 2),
            "first_epoch_seconds": round(history.seconds[0], 2),
            "examples_per_second": round(rows / per_epoch) if per_epoch else None,
        }
        print(f"train {name:36s} {per_epoch:8.2f} s/epoch ({rows:,} rows)", flush=True)
        if name == "cnn_hybrid":
            evaluation(model, split, results)


def evaluation(model, split, results: dict, n_users: int = 36_751) -> None:
    """Rank 1,000 candidates for n_users (test users repeated to the paper's user count)."""
    users = np.resize(split.test.user, n_users)
    sequences = np.resize(split.sequences("test", 50), (n_users, 50))
    candidates = np.resize(split.test.candidates, (n_users, split.test.candidates.shape[1]))
    timed(results, f"score {n_users:,} users x 1,000 candidates", model.score, users, sequences, candidates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="course scale, fewer models")
    parser.add_argument("--models", default=",".join(LEARNED))
    args = parser.parse_args()
    results: dict = {"machine": machine()}
    scale = "course" if args.quick else "retailrocket"
    with tempfile.TemporaryDirectory() as tmp:
        split = data_pipeline(scale, results, Path(tmp))
        if not args.quick:
            big_load(results, Path(tmp))
    training(split, args.models.split(","), results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
