"""Does the row-sparse ("lazy") Adam change accuracy? cnn_hybrid trained with it and with plain Adam.

    python benchmarks/lazy_adam.py [--scale course] [--seeds 0,1,2] [--cache results/models]

Lazy Adam updates only the embedding rows of a batch, so the moments of absent rows are not decayed
(`recsys_helpers/models/trainer.py`). Both optimisers train cnn_hybrid on the same split with the
same seeds; the script prints test HR@10 / NDCG@10 with 95% bootstrap CIs, the paired difference
(lazy minus plain, seed-averaged per user) and the seconds per epoch, and writes
benchmarks/results/<date>-lazy-adam.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from recsys_helpers.experiments import load_split, run_experiment  # noqa: E402
from recsys_helpers.metrics import paired_comparison  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="course")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--cache", default=None, help="a training cache folder to reuse (see experiments.train)"
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    split, _ = load_split("synthetic", None, args.scale, 0)
    out: dict = {"scale": args.scale, "seeds": seeds, "test_users": len(split.test)}
    per_user = {}
    for optimizer in ("lazy_adam", "adam"):
        result = run_experiment(
            split, ["cnn_hybrid"], seeds, full=False, cache=args.cache, optimizer=optimizer, verbose=0
        )
        row = result.summary(full=False).loc["cnn_hybrid"]
        table = result.table
        out[optimizer] = {
            "hr@10": round(row["hr@10"], 4),
            "hr@10_ci": row["hr@10_ci"],
            "ndcg@10": round(row["ndcg@10"], 4),
            "ndcg@10_ci": row["ndcg@10_ci"],
            "epochs": table["epochs"].tolist(),
            "seconds_per_epoch": round(float((table["train_s"] / table["epochs"]).mean()), 2),
        }
        per_user[optimizer] = {m: result.per_user("cnn_hybrid", m) for m in ("hr", "ndcg")}
    for metric in ("hr", "ndcg"):
        c = paired_comparison(per_user["lazy_adam"][metric], per_user["adam"][metric])
        out[f"lazy_minus_adam_{metric}@10"] = {
            "difference": round(c.difference.mean, 4),
            "ci": [round(c.difference.low, 4), round(c.difference.high, 4)],
            "p_value": round(c.p_value, 4),
        }
    print(json.dumps(out, indent=1))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{dt.date.today().isoformat()}-lazy-adam.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
