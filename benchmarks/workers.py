"""Training in parallel processes: `train_many` with 1 worker (this process, TensorFlow's default
threads) against 2 or more (processes of one thread each), on the same fits, from an empty cache.

    python benchmarks/workers.py                     # cnn_hybrid, 4 fits of 2 epochs, course shop
    python benchmarks/workers.py --fits 6 --workers 1,2 --model gru4rec

Prints one line per worker count (wall seconds, fits per minute, the speed-up over 1 worker) and
checks that every count trained the same models (equal test ranks); writes
benchmarks/results/<date>-workers.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_hybrid")
    parser.add_argument("--fits", type=int, default=4, help="fits (seeds 1..N) per worker count")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (final fits)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--scale", default="course")
    parser.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/)")
    args = parser.parse_args()

    from recsys_helpers.evaluation import evaluate
    from recsys_helpers.experiments import load_split, train_many
    from recsys_helpers.tuning import resolve_settings, settings_for

    split, _ = load_split("synthetic", None, args.scale, 0)
    settings, _ = resolve_settings("default", "synthetic", args.scale)
    job = {"name": args.model, "final_epochs": args.epochs, "verbose": 0}
    job |= settings_for(args.model, settings)
    jobs = [job | {"seed": seed} for seed in range(1, args.fits + 1)]
    rows, ranks = [], {}
    print(f"{'workers':>7} {'seconds':>8} {'fits/min':>8} {'speed-up':>8}", flush=True)
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            fits = train_many(split, jobs, cache=cache, workers=workers)
            seconds = time.perf_counter() - start
        ranks[workers] = [evaluate(model, split, "test").ranks for model, _ in fits]
        speedup = rows[0]["seconds"] / seconds if rows else 1.0
        rows.append({"workers": workers, "seconds": round(seconds, 1), "speed_up": round(speedup, 2)})
        print(f"{workers:>7} {seconds:>8.1f} {60 * args.fits / seconds:>8.2f} {speedup:>8.2f}", flush=True)
    first = next(iter(ranks.values()))
    same = all((a == b).all() for other in ranks.values() for a, b in zip(first, other, strict=True))
    print(f"the same models for every worker count (equal test ranks): {same}")
    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()},
        "load_average_at_end": os.getloadavg(),
        "model": args.model,
        "fits": args.fits,
        "epochs_per_fit": args.epochs,
        "scale": args.scale,
        "rows": rows,
        "same_models": same,
    }
    path = args.json or RESULTS / f"{dt.date.today()}-workers.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
