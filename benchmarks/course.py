"""How long the course takes: every numbered notebook run top to bottom with papermill, as
`make course` and `make experiments` run them, with an empty model cache (cold: every model is
trained), and the two totals.

    python benchmarks/course.py                      # all notebooks, the course shop
    python benchmarks/course.py --notebooks 00,01    # some of them
    python benchmarks/course.py --scale ci           # the small shop (what make test runs)
    python benchmarks/course.py --keep build/timed   # keep the executed notebooks there

Prints one line per notebook as it finishes and writes benchmarks/results/<date>-course[-SCALE].json
with the seconds per notebook, the totals and the machine. The executed notebooks go to a temporary
folder (or --keep); the committed ones are not touched. Target (2 CPU cores): `make course`, the
lessons, <= 45 minutes; `make experiments` (08, 11) is measured and reported beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
STUDY = ("08", "11")  # `make experiments`; the other notebooks are `make course`


def run_notebook(path: Path, out_dir: Path, cache: Path, scale: str) -> float:
    """Run one notebook with papermill (kernel cwd notebooks/, as in JupyterLab); its seconds."""
    command = [sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(path.parent)]
    command += ["-p", "MODEL_CACHE", str(cache)] if "MODEL_CACHE" in path.read_text() else []
    command += ["-p", "SCALE", scale] if scale != "course" else []
    command += [str(path), str(out_dir / path.name)]
    environment = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=environment)
    if run.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{run.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", help="comma-separated numbers, e.g. 00,08 (default: all)")
    parser.add_argument("--scale", default="course", help="the synthetic shop's preset (default course)")
    parser.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/)")
    parser.add_argument("--keep", type=Path, help="a folder for the executed notebooks (default: deleted)")
    args = parser.parse_args(argv)
    # `make course`, then `make experiments`: the lessons share no model with the study, so each
    # total is what its target costs from an empty cache
    notebooks = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"), key=lambda p: (p.name[:2] in STUDY, p.name))
    if args.notebooks:
        wanted = set(args.notebooks.split(","))
        unknown = wanted - {p.name[:2] for p in notebooks}
        if unknown:
            parser.error(f"--notebooks: no notebook numbered {sorted(unknown)}")
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        out_dir, cache = args.keep or Path(tmp) / "notebooks", Path(tmp) / "models"
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"{'notebook':<40} {'seconds':>8} {'total min':>9}", flush=True)
        for path in notebooks:
            seconds[path.name] = took = round(run_notebook(path, out_dir, cache, args.scale), 1)
            print(f"{path.name:<40} {took:>8.1f} {sum(seconds.values()) / 60:>9.1f}", flush=True)
    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "scale": args.scale,
        "model_cache": "empty at the start (cold)",
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()},
        "load_average_at_end": os.getloadavg(),
        "seconds": seconds,
        "total_minutes": round(sum(seconds.values()) / 60, 1),
        "make_course_minutes": round(sum(v for k, v in seconds.items() if k[:2] not in STUDY) / 60, 1),
        "make_experiments_minutes": round(sum(v for k, v in seconds.items() if k[:2] in STUDY) / 60, 1),
    }
    suffix = "" if args.scale == "course" else f"-{args.scale}"
    path = args.json or RESULTS / f"{dt.date.today()}-course{suffix}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"total {report['total_minutes']} minutes (make course {report['make_course_minutes']}, "
        f"make experiments {report['make_experiments_minutes']}); wrote {path}"
    )


if __name__ == "__main__":
    main()
