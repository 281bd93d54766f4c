"""Command line: `python -m recsys_helpers {stats,synthesize,versions,experiment,tune} ...`."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import versions
from .data import DATASETS, PRESETS, generate_shop, load_dataset, preprocess, table1
from .data.mapping import TIME_UNITS, events_options, mapping_file
from .protocol import NEGATIVE_MODES, TARGET_MODES, leave_one_out, protocol_facts
from .registry import BEYOND_PAPER, MODEL_NAMES, split_name
from .tuning import TUNING_SEED

# The paper's Table 1 (after the >= 5-interactions filter).
PAPER_TABLE1 = {
    "retailrocket": {
        "users": 36_751,
        "items": 83_274,
        "implicit": 396_923,
        "explicit": 18_450,
        "sparsity": 0.9999,
    },
    "recobell": {
        "users": 206_203,
        "items": 118_293,
        "implicit": 2_285_261,
        "explicit": 52_786,
        "sparsity": 1.0,
    },
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one readable line, no usage dump
        print(
            f"error: {message} (see `python -m recsys_helpers {self.prog.split()[-1]} --help`)",
            file=sys.stderr,
        )
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recsys_helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    stats = commands.add_parser("stats", help="print the Table-1 row of a dataset")
    _add_dataset_arguments(stats)
    stats.add_argument("--seed", type=int, default=0, help="synthetic seed")
    stats.add_argument("--targets", default="interactions", choices=TARGET_MODES, help="what a target is")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")

    synth = commands.add_parser("synthesize", help="write the synthetic shop as RetailRocket-format files")
    synth.add_argument("--scale", default="course", choices=sorted(PRESETS))
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="output folder")
    commands.add_parser("versions", help="TensorFlow and Keras: found and supported?")
    exp = commands.add_parser("experiment", help="train and evaluate models over seeds (Table 2)")
    _add_dataset_arguments(exp)
    exp.add_argument(
        "--models",
        default="all",
        help=f"comma-separated model names: {', '.join(MODEL_NAMES + BEYOND_PAPER)}; 'all' (Table 2's "
        f"models: {', '.join(MODEL_NAMES)}) combines with others, e.g. all,repeat_hybrid; any model can "
        "be wrapped as seen_first+<model> or gated_first+<model>",
    )
    exp.add_argument(
        "--seeds",
        default="1",
        help="comma-separated model seeds, e.g. 1,2,3,4,5 (the course's five); not the seed the "
        f"settings were tuned with ({TUNING_SEED}, the committed course study's and every new study's)",
    )
    exp.add_argument("--split-seed", type=int, default=0, help="seed of the stored candidate sets")
    exp.add_argument("--n-negatives", type=int, default=999, help="candidates per target (paper: 999)")
    exp.add_argument(
        "--negatives", default="never_interacted", choices=NEGATIVE_MODES, help="how candidates are drawn"
    )
    exp.add_argument(
        "--targets",
        default="interactions",
        choices=TARGET_MODES,
        help="interactions: a cart and its transaction are one target; events: the paper-literal reading",
    )
    exp.add_argument("--epochs", type=int, default=None, help="override the maximum number of epochs")
    exp.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="train in this many processes of one thread each (e.g. your CPU cores: the same models, "
        "that many times faster); on a GPU, one",
    )
    exp.add_argument(
        "--settings",
        default=None,
        help="tuned hyper-parameters (a settings.json of `tune`); default: the committed ones for the "
        "course shop, the paper's defaults elsewhere; 'none': the paper's defaults",
    )
    exp.add_argument(
        "--tuned-epochs",
        action="store_true",
        help="train each tuned model once per seed (the final fit only) for the epoch count its tuning "
        "chose, instead of a selection fit per seed: half the time or less",
    )
    exp.add_argument(
        "--selection-seed",
        type=int,
        default=None,
        help="each model with epochs and no tuned count gets one selection fit with this seed (e.g. "
        f"{TUNING_SEED}, no tested seed), then every seed trains only the final fit for the count it chose",
    )
    exp.add_argument("--no-full", action="store_true", help="skip full-ranking metrics")
    exp.add_argument(
        "--out",
        required=True,
        help="folder for results.csv (a row per model and seed, written as each is evaluated) and "
        "summary.md; the same command run again resumes there",
    )
    cache = exp.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", default=None, help="folder of trained models to reuse (default: OUT/models)"
    )
    cache.add_argument("--no-cache", action="store_true", help="keep no trained models on disk")
    exp.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write summary.md from the rows already in OUT/results.csv",
    )

    tune = commands.add_parser("tune", help="tune every model with the same budget on validation targets")
    _add_dataset_arguments(tune)
    tune.add_argument(
        "--models",
        default="all",
        help="comma-separated model names, or 'all': every tunable model (see the error for the list)",
    )
    tune.add_argument(
        "--trials", type=int, required=True, help="finished trials per model (the same for all)"
    )
    tune.add_argument("--split-seed", type=int, default=0, help="seed of the stored candidate sets")
    tune.add_argument("--n-negatives", type=int, default=999, help="candidates per target (paper: 999)")
    tune.add_argument(
        "--seed",
        type=int,
        default=TUNING_SEED,
        help=f"seed of the sampler and of every trial's model (default {TUNING_SEED}: no tested seed)",
    )
    tune.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///OUT/study.db)")
    tune.add_argument("--out", required=True, help="folder for settings.json (and the default study.db)")
    return parser


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="events: your own shop's log")
    parser.add_argument("--data-dir", default=None, help="the raw files' folder (default: data/<dataset>)")
    parser.add_argument("--scale", default="course", choices=sorted(PRESETS), help="synthetic preset")
    own = parser.add_argument_group(
        "your own shop (--dataset events)", "a mapping file, and/or flags that override its entries"
    )
    own.add_argument("--mapping", help="TOML file: path, columns, event names, time unit (see README)")
    own.add_argument("--events", help="the events file: .csv, .csv.gz or .parquet")
    own.add_argument("--columns", help="user_id=COL,item_id=COL,timestamp=COL,event=COL[,category_id=COL]")
    own.add_argument("--names", help="the CSV has no header line: its columns, comma-separated")
    own.add_argument("--implicit", help="event names that are implicit feedback, e.g. pv")
    own.add_argument("--explicit", help="event names that are explicit feedback, e.g. cart,buy")
    own.add_argument("--ignore", help="event names to drop (counted in the load report), e.g. fav")
    own.add_argument("--time-unit", choices=sorted(TIME_UNITS), help="epoch s or ms, or iso date-time text")


OWN_SHOP_FLAGS = {  # CLI flag -> mapping-file key
    "events": "path",
    "columns": "columns",
    "names": "names",
    "implicit": "implicit_events",
    "explicit": "explicit_events",
    "ignore": "ignored_events",
    "time_unit": "timestamp_unit",
}


def _events_options(args: argparse.Namespace) -> dict | None:
    """The `load_events` arguments from --mapping and the own-shop flags (None: another dataset)."""
    given = [flag for flag in ("mapping", *OWN_SHOP_FLAGS) if getattr(args, flag) is not None]
    if args.dataset != "events":
        if given:
            flag = given[0].replace("_", "-")
            raise ValueError(f"--{flag} describes your own shop: use it with --dataset events.")
        return None
    if not given:
        raise ValueError(
            "--dataset events needs --mapping shop.toml, or the flags --events, --columns, --implicit "
            "and --explicit."
        )
    mapping = mapping_file(args.mapping) if args.mapping else {}
    for flag, key in OWN_SHOP_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if key == "columns":
            pairs = [pair.partition("=") for pair in value.split(",") if pair.strip()]
            if not pairs or any(not sep or not v.strip() for _, sep, v in pairs):
                raise ValueError(f"--columns wants pairs like user_id=uid,item_id=sku, not {value!r}.")
            value = {k.strip(): v.strip() for k, _, v in pairs}
        elif key in ("names", "implicit_events", "explicit_events", "ignored_events"):
            value = [v.strip() for v in value.split(",") if v.strip()]
        mapping[key] = value
    flags = ", ".join(f"--{flag.replace('_', '-')}" for flag in given if flag != "mapping")
    source = " with ".join(filter(None, [args.mapping, flags])) if args.mapping else f"the flags {flags}"
    return events_options(mapping, source)


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return int(text)


def _parse_list(text: str, what: str, cast=str, valid=None) -> list:
    try:
        values = [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise ValueError(f"--{what} must be a comma-separated list, got {text!r}.") from error
    bad = [v for v in values if valid is not None and v not in valid]
    if not values or bad:
        raise ValueError(f"--{what}: unknown {bad or text!r}; valid: {', '.join(map(str, valid or []))}.")
    return values


def _model_list(text: str, everything: tuple[str, ...]) -> list[str]:
    """--models: comma-separated names, where 'all' stands for `everything` (duplicates dropped,
    the order kept)."""
    names = _parse_list(text, "models")
    return list(dict.fromkeys(n for name in names for n in (everything if name == "all" else (name,))))


def cmd_experiment(args: argparse.Namespace) -> None:
    models = _model_list(args.models, MODEL_NAMES)
    for name in models:
        split_name(name)  # an unknown name is one clear error, before TensorFlow is imported
    seeds = _parse_list(args.seeds, "seeds", int)
    events = _events_options(args)
    settings = _settings(args)
    from .experiments import load_split, run_experiment, write_report  # imports TensorFlow: after the checks

    _quiet_tensorflow()

    split, shop = load_split(
        args.dataset,
        args.data_dir,
        args.scale,
        args.split_seed,
        args.negatives,
        args.targets,
        events=events,
        n_negatives=args.n_negatives,
    )
    overrides = {"epochs": args.epochs} if args.epochs else {}
    print(
        f"{args.dataset}: {len(split.test):,} test users, {split.n_items:,} items, targets "
        f"{args.targets}, negatives {args.negatives}, models {', '.join(models)}"
    )
    cache = None if args.no_cache else (args.cache or Path(args.out) / "models")
    result = run_experiment(
        split,
        models,
        seeds,
        full=not args.no_full,
        shop=shop,
        settings=settings,
        cache=cache,
        out=args.out,
        report_only=args.report_only,
        tuned_epochs=args.tuned_epochs,
        selection_seed=args.selection_seed,
        workers=args.workers,
        verbose=0,
        **overrides,
    )
    out = write_report(result, args.out, dataset=args.dataset)
    print(f"wrote {out / 'summary.md'} ({len(result.table)} rows of {out / 'results.csv'})")


def _quiet_tensorflow() -> None:
    """Only errors from TensorFlow's logger: its warnings (e.g. "triggered tf.function retracing"
    when the last batch of a log is shorter) would stand between the command's result lines."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _settings(args: argparse.Namespace) -> dict[str, dict] | None:
    """--settings: a file, 'none', or (not given) the committed settings of this dataset, if any."""
    from .tuning import resolve_settings

    settings, source = resolve_settings(args.settings or "default", args.dataset, args.scale)
    print(source)
    return settings


def cmd_tune(args: argparse.Namespace) -> None:
    from .tuning import TUNABLE, check_models

    models = check_models(_model_list(args.models, TUNABLE))
    if args.trials < 1:
        raise ValueError(f"--trials must be >= 1, got {args.trials}.")
    events = _events_options(args)
    from .experiments import load_split  # imports TensorFlow: after the checks
    from .tuning import tune

    _quiet_tensorflow()

    split, _ = load_split(
        args.dataset, args.data_dir, args.scale, args.split_seed, events=events, n_negatives=args.n_negatives
    )
    describe = {
        "dataset": args.dataset,
        "scale": args.scale if args.dataset == "synthetic" else None,
        "data": args.data_dir or args.mapping or args.events,
        "split_seed": args.split_seed,
        "n_negatives": args.n_negatives,
        "validation_targets": len(split.valid),
    }
    print(
        f"{args.dataset}: tuning {', '.join(models)} with {args.trials} trials each on "
        f"{len(split.valid):,} validation targets"
    )
    tune(split, models, args.trials, args.out, storage=args.storage, seed=args.seed, describe=describe)
    print(f"wrote {args.out}/settings.json")


def cmd_stats(args: argparse.Namespace) -> None:
    options = {"scale": args.scale, "seed": args.seed} if args.dataset == "synthetic" else {}
    options |= _events_options(args) or {}
    data = preprocess(load_dataset(args.dataset, args.data_dir, **options))
    row = table1(data)
    facts = protocol_facts(leave_one_out(data, n_negatives=1, targets=args.targets))
    if args.json:
        print(json.dumps(row | facts))
        return
    # The synthetic shop is modelled on RetailRocket; an own shop has no paper row to compare with.
    reference = args.dataset if args.dataset in PAPER_TABLE1 else "retailrocket"
    paper = PAPER_TABLE1[reference] if args.dataset != "events" else {}
    print(f"{'':10s}{'ours':>14s}" + (f"{f'paper ({reference})':>24s}" if paper else ""))
    for key, value in row.items():
        fmt = (lambda v: f"{v:.4%}") if key == "sparsity" else (lambda v: f"{v:,}")
        print(f"{key:10s}{fmt(value):>14s}" + (f"{fmt(paper[key]):>24s}" if paper else ""))
    print(
        f"(removed: {data.report['users_removed']:,} users with < 5 interactions, "
        f"{data.report['exact_duplicates_removed']:,} exact duplicate rows)"
    )
    print(
        f"\nProtocol (targets = {args.targets}): {facts['test_targets']:,} test targets, "
        f"{facts['validation_targets']:,} validation targets\n"
        f"  repeat targets (item touched before)        {facts['share_repeat_targets']:7.1%}\n"
        f"  targets among the user's last 5 events      {facts['share_targets_in_last5']:7.1%}\n"
        f"  test item = validation item                 {facts['share_test_equals_valid']:7.1%}"
    )


def cmd_synthesize(args: argparse.Namespace) -> None:
    out = generate_shop(args.scale, seed=args.seed).write(args.out)
    print(f"wrote the synthetic shop ({args.scale}, seed {args.seed}) to {out}")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one plain line on stderr (no library path, no source line)."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "versions":  # read from package metadata: works even where importing fails
        print(versions.describe())
        return 1 if versions.unsupported(versions.installed()) else 0
    commands = {
        "stats": cmd_stats,
        "synthesize": cmd_synthesize,
        "experiment": cmd_experiment,
        "tune": cmd_tune,
    }
    resume = {
        "experiment": "results.csv holds every row finished so far",
        "tune": "the study keeps every finished trial",
    }
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        try:
            commands[args.command](args)
        except (ValueError, FileNotFoundError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if args.command in resume:
                print(
                    f"interrupted: {resume[args.command]}; run the same command again to continue.",
                    file=sys.stderr,
                )
            return 130
    return 0
