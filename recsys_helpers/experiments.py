"""Run models over seeds on one split and tabulate them beside the paper's Table 2."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import pickle
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import _worker
from .data import SyntheticShop
from .evaluation import GROUPS, Evaluation, count_beating, evaluate
from .metrics import bootstrap_ci, holm, paired_comparison, rank_of_positive
from .models import GPUS, MODEL_CLASSES, WRAPPER_CLASSES, make_model
from .models.base import History, Recommender
from .protocol import Split
from .registry import split_name
from .store import ModelCache, ResultStore, fingerprint, library_sources, model_sources
from .tuning import settings_for

# The model seeds of every tested model and claim variant: five, none of them a tuning seed (the
# committed course study tuned with seed 0, `tune` now uses tuning.TUNING_SEED = 100), so a verdict
# never rests on the seed its settings were chosen on.
TEST_SEEDS = (1, 2, 3, 4, 5)

# Table 2 of the paper: HR@10 and NDCG@10 on RetailRocket and Recobell.
PAPER_TABLE2 = pd.DataFrame(
    {
        "model": ["mf", "gru4rec", "caser", "ite", "cnn_hybrid"],
        "retailrocket_hr@10": [0.112, 0.130, 0.137, 0.148, 0.159],
        "retailrocket_ndcg@10": [0.060, 0.074, 0.081, 0.089, 0.098],
        "recobell_hr@10": [0.105, 0.142, 0.150, 0.158, 0.166],
        "recobell_ndcg@10": [0.057, 0.087, 0.093, 0.097, 0.105],
    }
).set_index("model")


def load_split(
    dataset: str = "synthetic",
    data_dir: str | Path | None = None,
    scale: str = "course",
    seed: int = 0,
    negatives: str = "never_interacted",
    targets: str = "interactions",
    events: dict | None = None,
    n_negatives: int = 999,
) -> tuple[Split, SyntheticShop | None]:
    """The notebooks' one-liner: load, preprocess and split a dataset (+ the shop's ground truth).

    The split is drawn from `seed`, so every notebook and model sees the same candidates.
    negatives: "never_interacted" (the paper) or "hard"; targets: "interactions" (one purchase,
    one target) or "events" (the paper-literal reading); see `protocol`. dataset "events": your
    own shop, data_dir its mapping file and/or `events` the `load_events` arguments. n_negatives:
    sampled candidates per target beside it (the paper's 999; fewer for a shop with few items).
    """
    from .data import load_dataset, load_synthetic_shop, preprocess
    from .protocol import leave_one_out

    options = {"scale": scale, "seed": seed} if dataset == "synthetic" else dict(events or {})
    split = leave_one_out(
        preprocess(load_dataset(dataset, data_dir, **options)),
        n_negatives=n_negatives,
        negatives=negatives,
        targets=targets,
        seed=seed,
    )
    shop = load_synthetic_shop(scale, seed, data_dir) if dataset == "synthetic" else None
    return split, shop


@dataclass
class ExperimentResult:
    """One row per (model, seed) in `table`; per-user evaluations in `evaluations[(model, seed)]`."""

    table: pd.DataFrame
    evaluations: dict[tuple[str, int], Evaluation] = field(default_factory=dict)
    models: dict[tuple[str, int], Recommender] = field(default_factory=dict)  # the tested models
    split: Split | None = None
    shop: SyntheticShop | None = None
    stored: Path | None = None  # the folder whose results.csv holds these rows (run_experiment's out)

    def evaluate_on(self, split: Split, full: bool = True) -> ExperimentResult:
        """The same tested models (and oracle) ranked against another candidate set of the same test
        targets, e.g. `negatives="hard"`: models are not retrained, only re-scored."""
        mine = self.split.test if self.split is not None else None
        if mine is None or not (
            np.array_equal(mine.row, split.test.row) and np.array_equal(mine.item, split.test.item)
        ):
            raise ValueError(
                "evaluate_on needs a split of the same data with the same test targets (same dataset, "
                "seed and targets mode; only `negatives` may differ)."
            )
        lacking = [
            f"{n} seed {s}" for n, s in self.evaluations if n != "oracle" and (n, s) not in self.models
        ]
        if lacking:
            raise ValueError(
                f"evaluate_on re-scores the models in memory; rows reused from a results folder have none "
                f"({', '.join(lacking)}): run the experiment without `out`."
            )
        rows, evaluations = [], {}
        for key, model in self.models.items():
            evaluations[key] = evaluate(model, split, "test", full=full)
        if self.shop is not None:
            evaluations[("oracle", 0)] = oracle_evaluation(self.shop, split, full=full)
        for (name, seed), result in evaluations.items():
            rows.append({"model": name, "seed": seed, **result.summary()})
        return ExperimentResult(pd.DataFrame(rows), evaluations, self.models, split, self.shop)

    def per_seed(
        self, model: str, metric: str = "hr", k: int = 10, full: bool = False, group: str | None = None
    ) -> np.ndarray:
        """Per-user HR@k or NDCG@k of one model, one row per seed: float[n_seeds, n_test_users] (or
        the users of one group, "repeat" or "new"). What the two-level intervals resample."""
        evals = [e for (name, _), e in self.evaluations.items() if name == model]
        if not evals:
            raise ValueError(
                f"no results for model {model!r}; have {sorted({n for n, _ in self.evaluations})}."
            )
        return np.stack([e.gains(metric, k, full, group) for e in evals])

    def per_user(
        self, model: str, metric: str = "hr", k: int = 10, full: bool = False, group: str | None = None
    ) -> np.ndarray:
        """Seed-averaged per-user HR@k or NDCG@k of one model: float[n_test_users] (for looking at
        users; intervals use `per_seed`)."""
        return self.per_seed(model, metric, k, full, group).mean(axis=0)

    def paired(self, reference: str, metric: str = "hr", k: int = 10, full: bool = False) -> pd.DataFrame:
        """`reference` minus every other model on the same users: mean difference, 95% CI and
        p-value of a two-level paired bootstrap (seeds, then users: `metrics.paired_comparison`)."""
        rows = []
        for other in dict.fromkeys(name for name, _ in self.evaluations):
            if other == reference:
                continue
            result = paired_comparison(
                self.per_seed(reference, metric, k, full), self.per_seed(other, metric, k, full)
            )
            d = result.difference
            rows.append(
                {
                    "versus": other,
                    "difference": d.mean,
                    "low": d.low,
                    "high": d.high,
                    "p_value": result.p_value,
                }
            )
        return pd.DataFrame(rows).set_index("versus")

    def summary(self, full: bool = True, k: int = 10, groups: bool = True) -> pd.DataFrame:
        """Mean over seeds with a 95% two-level bootstrap CI (seeds, then users: the interval holds
        both sources of noise); with `groups`, the share of repeat targets and the same for the
        repeat and new targets."""
        rows = []
        for model in dict.fromkeys(self.table["model"]):
            evals = [e for (name, _), e in self.evaluations.items() if name == model]
            row = {"model": model, "seeds": len(evals)}
            modes = (False, True) if full and evals[0].full_ranks is not None else (False,)
            with_groups = groups and evals[0].repeat is not None
            if with_groups:
                row["share_repeat"] = float(evals[0].repeat.mean())
            for group in (None, *GROUPS) if with_groups else (None,):
                suffix = f"_{group}" if group else ""
                for metric in ("hr", "ndcg"):
                    for is_full in modes:
                        values = self.per_seed(model, metric, k, is_full, group)
                        name = f"{'full_' if is_full else ''}{metric}@{k}{suffix}"
                        if values.shape[1] == 0:  # a group without targets (e.g. no new purchase)
                            row[name], row[f"{name}_ci"] = float("nan"), "no targets"
                            continue
                        est = bootstrap_ci(values)
                        row[name] = est.mean
                        row[f"{name}_ci"] = f"[{est.low:.3f}, {est.high:.3f}]"
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")


def train(
    name: str,
    split: Split,
    *,
    cache: str | Path | None = None,
    final: bool = True,
    final_epochs: int | None = None,
    **overrides,
) -> tuple[Recommender, History]:
    """Select on validation, then train the model that is tested (protocol: "Two fits").

    1. The selection fit: `make_model(name, **overrides).fit(split)`, trained on the events before
       each user's validation target and early-stopped on the validation targets; its validation
       HR@10 / NDCG@10 are in the returned history (for models without epochs: one evaluation).
    2. With `final` (default): the same model trained from scratch on `split.final()` (every event
       before each user's test target) for the epoch count the selection fit chose
       (`history.best_epoch`), without validation. This is the model returned and tested;
       `history.final_epochs` / `final_seconds` say what it cost.
    `final=False` returns the selection fit itself (to inspect a model on validation targets).

    `final_epochs`: an epoch count chosen on validation targets before (the tuned one,
    `tuning.Settings.epochs`): no selection fit, only the final fit, for exactly that many epochs.
    Half the training or less, at a price: the count was chosen with another model seed (the
    tuning's), and the history has no validation scores.

    With `cache` (a folder), each fit is saved there under a key made of the model and its full
    configuration (verbosity aside), a fingerprint of the split
    it trains on (events, training rows, every candidate) and of the library's model code and
    TensorFlow version; the next call with the same key loads it instead of training again, with
    the history of the original run. Training is seeded, so a cached model is the model a new run
    would train. The notebooks share one cache, so the course trains each fit once.
    """
    if split.stage == "final":
        raise ValueError("train() takes the selection split (load_split / leave_one_out), not split.final().")
    if final_epochs is not None:
        if not final or final_epochs < 1:
            raise ValueError(f"final_epochs={final_epochs!r} needs final=True and a count of at least 1.")
        model, final_history = _fit(name, split.final(), cache, overrides | {"epochs": final_epochs}, split)
        return model, History(
            final_epochs=len(final_history.epoch), final_seconds=final_history.train_seconds
        )
    model, history = _fit(name, split, cache, overrides, split)
    if not history.valid_hr and len(split.valid):
        result = evaluate(model, split, "valid")
        history.valid_hr, history.valid_ndcg = [result.hr(10)], [result.ndcg(10)]
    if not final:
        return model, history
    epochs = {"epochs": history.best_epoch} if history.epoch else {}
    model, final_history = _fit(name, split.final(), cache, overrides | epochs, split)
    history.final_epochs = len(final_history.epoch)
    history.final_seconds = final_history.train_seconds
    return model, history


def _fit(
    name: str, split: Split, cache: str | Path | None, overrides: dict, selection: Split
) -> tuple[Recommender, History]:
    """`make_model(name, **overrides).fit(split)`, through the cache when there is one (see `train`).
    A wrapped model ("seen_first+caser") fits its inner model through the cache, then wraps it
    with the touched items of `split`; "gated_first+..." also fits its gate on the validation
    targets of `selection` (the selection split: the final fit has none, and never test targets)."""
    wrapper, inner = split_name(name)
    if wrapper:
        model, history = _fit(inner, split, cache, overrides, selection)
        wrapped = WRAPPER_CLASSES[wrapper](model).remember(split)
        return (wrapped.fit_gate(selection) if wrapper == "gated_first" else wrapped), history
    model = make_model(name, **overrides)
    if cache is None or not hasattr(model, "save"):
        return model, model.fit(split)
    key = _key(name, model, split)
    models = ModelCache(cache)
    cached = models.load(name, key, type(model))
    if cached is not None:
        return cached
    history = model.fit(split)
    models.save(name, key, model, history)
    return model, history


def _key(name: str, model: Recommender, split: Split) -> str:
    """The cache key of fitting `model` (unfitted; registry name `name`) on `split`."""
    config = {k: v for k, v in asdict(model.config).items() if k != "verbose"}
    return fingerprint([name, type(model).__name__, config], split, model_sources())


def _cached(split: Split, cache: str | Path, job: dict) -> bool:
    """Whether `cache` holds every fit that `train(**job)` (not wrapped, a cached kind) would run."""
    name, options = job["name"], _options(job)
    final, final_epochs = options.pop("final", True), options.pop("final_epochs", None)

    def history(fitted_on: Split, overrides: dict) -> History | None:
        return ModelCache(cache).history(name, _key(name, make_model(name, **overrides), fitted_on))

    if final_epochs is not None:
        return history(split.final(), options | {"epochs": final_epochs}) is not None
    selection = history(split, options)
    if selection is None or not final:
        return selection is not None
    epochs = {"epochs": selection.best_epoch} if selection.epoch else {}
    return history(split.final(), options | epochs) is not None


def train_many(
    split: Split, jobs: list[dict], *, cache: str | Path | None = None, workers: int = 1
) -> list[tuple[Recommender, History]]:
    """`[train(job["name"], split, cache=cache, **rest of job) for job in jobs]`, trained in
    `workers` processes at once.

    Each job is `train`'s keyword arguments with the model's "name". With `workers` > 1 the fits
    are first trained into `cache` (a temporary folder without one) by that many processes of one
    TensorFlow thread each, then each job is loaded from it, in order. A training step of these
    models is many small operations, which a second thread does not speed up (cnn_hybrid on the
    course shop: 6.4 s per epoch with one thread or two), and one thread trains the same weights to
    the last bit: two processes on two cores train twice the fits in the same time, and each is the
    model one process would train. With a GPU it trains in this process (the processes would compete
    for the device). The processes are started fresh ("spawn"), so a script that calls this runs
    it under `if __name__ == "__main__":`, as any such pool needs; notebooks need nothing.
    """
    _check_workers(workers)
    if workers > 1 and not GPUS:
        with tempfile.TemporaryDirectory() if cache is None else contextlib.nullcontext(cache) as folder:
            _train_ahead(split, jobs, folder, workers)
            return [train(job["name"], split, cache=folder, **_options(job)) for job in jobs]
    return [train(job["name"], split, cache=cache, **_options(job)) for job in jobs]


def _check_workers(workers) -> None:
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1 (1: train here), got {workers!r}.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('s') else 's'}"


def _options(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "name"}


def _train_ahead(
    split: Split, jobs: list[dict], cache: str | Path, workers: int, coarse: bool = True
) -> None:
    """Train the jobs' fits that `cache` lacks into it, in `workers` processes (see `train_many`):
    each distinct fit once (a wrapped model's is that of the model it wraps); models that the cache
    does not keep (MF, the floors: seconds to fit), and a lone fit, are left to the caller. A
    progress bar counts the fits, redrawn after each (`coarse`: each quarter, for a notebook)."""
    distinct = {}
    for job in jobs:
        inner = split_name(job["name"])[1]
        if hasattr(MODEL_CLASSES[inner], "save"):
            job = job | {"name": inner}
            distinct.setdefault(json.dumps(job, sort_keys=True, default=str), job)
    distinct = {text: job for text, job in distinct.items() if not _cached(split, cache, job)}
    if len(distinct) < 2:
        return  # one fit or none: the caller trains it, no process to start
    workers, every = min(workers, len(distinct)), -(-len(distinct) // 4) if coarse else 1
    context = multiprocessing.get_context("spawn")  # not fork: this process has started TensorFlow
    bar = tqdm(
        total=len(distinct),
        desc=f"training {_count(len(distinct), 'fit')} in {_count(workers, 'process')}",
        unit="fit",
        miniters=every,
        mininterval=0,
        maxinterval=float("inf"),  # redraw only every `every` fits
    )
    initargs = (pickle.dumps(split), str(cache))
    with bar, ProcessPoolExecutor(workers, context, initializer=_worker.start, initargs=initargs) as pool:
        futures = {pool.submit(_worker.fit, job): job for job in distinct.values()}
        for future in as_completed(futures):
            try:
                future.result()
            except BrokenProcessPool as error:
                raise RuntimeError(
                    f"a training process died (out of memory?) while training {futures[future]['name']}: "
                    "run with fewer workers (workers=1 trains in this process)."
                ) from error
            bar.update()


def run_experiment(
    split: Split,
    models: list[str],
    seeds: list[int],
    *,
    full: bool = True,
    shop: SyntheticShop | None = None,
    cache: str | Path | None = None,
    settings: dict[str, dict] | None = None,
    out: str | Path | None = None,
    report_only: bool = False,
    tuned_epochs: bool = False,
    selection_seed: int | None = None,
    progress: str = "rows",
    workers: int = 1,
    **overrides,
) -> ExperimentResult:
    """Train (selection fit, then the tested final fit: see `train`) and evaluate each model with
    each seed. `settings`: {model: hyper-parameters} chosen by tuning (`tuning.load_settings`; a
    wrapped model takes those of the model it wraps); `overrides` apply to all models, on top.

    `cache`: a folder of trained models to reuse (see `train`). Columns: the test metrics with the
    repeat/new groups (`Evaluation.summary`), valid_hr@10 (the selection fit's, at its best epoch:
    compare it with hr@10 for the validation-test gap; NaN for a wrapped model such as
    "seen_first+caser" or "gated_first+caser", which has no selection fit of its own), epochs (the
    selection fit's), final_epochs, train_s (seconds spent in training epochs of both fits,
    validation excluded; the original run's for a cached model; wall time for models without
    epochs) and eval_s.

    `out`: a folder where each (model, seed) row is stored as soon as it is evaluated
    (`store.ResultStore`: results.csv and the per-user ranks), so that an interrupted run loses
    only the row in progress; called again, the rows stored under the same key (split, settings,
    library code) are reused, not recomputed (their models are not loaded: `models` lacks them).
    `report_only`: use the stored rows only, train nothing (the rows not stored yet are named).

    `tuned_epochs`: each model whose `settings` (`tuning.Settings`) carry a tuned epoch count is
    trained once per seed, the final fit only, for that count (`train(final_epochs=...)`; its
    valid_hr@10 is NaN and epochs 0); an `epochs` override caps the count. The others as above.

    `selection_seed`: each model with epochs and without a tuned count gets one selection fit, with
    this seed, and every seed then trains the final fit only, for the epoch count that fit chose:
    n + 1 fits for n seeds instead of 2n (a claim's variants, which no tuning chose a count for).
    The price is `tuned_epochs`' (the count was chosen with another seed), so pass a seed no tested
    model uses: `tuning.TUNING_SEED`, and the rows are again final-only (valid_hr@10 NaN, epochs 0).

    `progress`: "rows" prints a line per model and seed as it is evaluated (the command line's
    log); "models" a line per model once its seeds are done (means over the seeds: a notebook's).

    `workers`: with more than one, every fit is first trained in that many processes (`train_many`:
    the same models, about `workers` times faster on as many CPU cores), then loaded and evaluated
    here, in order. The selection fits come first, then the final fits that need their epoch count.
    """
    if progress not in ("rows", "models"):
        raise ValueError(f"progress must be 'rows' or 'models', got {progress!r}.")
    _check_workers(workers)
    if tuned_epochs and not hasattr(settings, "epochs"):
        raise ValueError(
            "tuned_epochs (--tuned-epochs) needs tuned settings (tuning.load_settings, --settings): "
            "the epoch counts come from them."
        )
    cap = overrides.get("epochs")
    final_epochs = {name: _tuned_epochs(name, settings, cap) for name in models} if tuned_epochs else {}
    if selection_seed is not None and selection_seed in seeds:
        raise ValueError(f"selection_seed={selection_seed} is also a tested seed: choose one that is not.")
    # the models whose epoch count one selection fit with `selection_seed` will choose
    selected = [] if selection_seed is None else [m for m in models if final_epochs.get(m) is None]
    epoch_rule = final_epochs | {name: f"selected with seed {selection_seed}" for name in selected}
    store = _RunStore(out, split, models, seeds, settings, overrides, full, shop is not None, epoch_rule)
    stored = {(name, seed): store.get(name, seed) for name in models for seed in seeds}
    options = {name: settings_for(name, settings) | overrides for name in models}
    with contextlib.ExitStack() as stack:
        if workers > 1 and not report_only and not GPUS:
            cache = cache or stack.enter_context(tempfile.TemporaryDirectory())
            todo = [key for key, row in stored.items() if row is None]
            ahead = (final_epochs, selected, selection_seed, cache, workers, progress == "models")
            _train_experiment(split, todo, options, *ahead)
        rows, evaluations, trained, missing = [], {}, {}, []
        for name in models:
            for seed in seeds:
                reused = stored[(name, seed)]
                if reused is None and report_only:
                    missing.append(f"{name} seed {seed}")
                    continue
                if reused is None:
                    if name in selected:  # once per model, before its first seed
                        selected.remove(name)
                        fit = {"final": False, "seed": selection_seed, **options[name]}
                        _, history = train(name, split, cache=cache, **fit)
                        final_epochs[name] = history.best_epoch if history.epoch else None  # None: no epochs
                    epochs = final_epochs.get(name)
                    row, result, model = _run_one(name, seed, split, full, cache, options[name], epochs)
                    store.put(row, result)
                    trained[(name, seed)] = model
                else:
                    row, result = reused
                rows.append(row)
                evaluations[(name, seed)] = result
                if progress == "rows":
                    print(
                        f"[{name} seed {seed}] {_progress_line([row])}"
                        + ("  (stored)" if reused is not None else ""),
                        flush=True,
                    )
            done = [row for row in rows if row["model"] == name]
            if progress == "models" and done:
                print(
                    f"[{name}] {len(done)} seed{'s' if len(done) > 1 else ''}: {_progress_line(done)}",
                    flush=True,
                )
        if missing and len(missing) == len(models) * len(seeds):
            raise ValueError(
                f"no stored rows in {out} for these models and seeds: run without --report-only."
            )
        if missing:
            print(f"not computed yet (left out of the report): {', '.join(missing)}", flush=True)
        if shop is not None:
            reused = store.get("oracle", 0)
            if reused is None:
                result = oracle_evaluation(shop, split, full=full)
                row = {"model": "oracle", "seed": 0, **result.summary()}
                row |= {"epochs": 0, "train_s": 0.0, "eval_s": 0.0}
                store.put(row, result)
            else:
                row, result = reused
            evaluations[("oracle", 0)] = result
            rows.append(row)
        table = pd.DataFrame(rows).drop(columns=["key", "split"], errors="ignore")
    return ExperimentResult(table, evaluations, trained, split, shop, None if out is None else Path(out))


def _train_experiment(split, todo, options, final_epochs, selected, selection_seed, cache, workers, coarse):
    """Train `run_experiment`'s fits for the (model, seed) pairs `todo` into `cache`, in `workers`
    processes: every selection fit and every fit that needs none, then the final fits whose epoch
    count a selection fit chose."""
    kept = {name for name, _ in todo if hasattr(MODEL_CLASSES[split_name(name)[1]], "save")}
    waiting = sorted(kept & set(selected))
    first = [{"name": name, "seed": selection_seed, "final": False, **options[name]} for name in waiting]
    first += [
        {"name": name, "seed": seed, "final_epochs": final_epochs.get(name), **options[name]}
        for name, seed in todo
        if name not in waiting
    ]
    _train_ahead(split, first, cache, workers, coarse)
    chosen = {
        name: train(name, split, cache=cache, final=False, seed=selection_seed, **options[name])[1].best_epoch
        for name in waiting
    }
    then = [
        {"name": name, "seed": seed, "final_epochs": chosen[name], **options[name]}
        for name, seed in todo
        if name in chosen
    ]
    _train_ahead(split, then, cache, workers, coarse)


def _progress_line(rows: list[dict]) -> str:
    """Test HR@10 (repeat, new), NDCG@10 and validation HR@10 (means over `rows`), and the seconds."""
    mean = pd.DataFrame(rows).mean(numeric_only=True)
    return (
        f"HR@10 {mean['hr@10']:.4f} (repeat {mean['hr@10_repeat']:.4f}, new {mean['hr@10_new']:.4f})  "
        f"NDCG@10 {mean['ndcg@10']:.4f}  valid HR@10 {mean['valid_hr@10']:.4f}  "
        f"train {mean['train_s']:.1f} s  eval {mean['eval_s']:.1f} s" + ("" if len(rows) == 1 else " (means)")
    )


def _tuned_epochs(name: str, settings, cap: int | None) -> int | None:
    """The tuned epoch count of a registry name (a wrapped model: that of the model it wraps), at
    most `cap` (an `epochs` override) when given; None for a model without one."""
    epochs = settings.epochs.get(split_name(name)[1])
    return epochs if epochs is None or cap is None else min(epochs, cap)


def _run_one(
    name: str, seed: int, split: Split, full: bool, cache, options: dict, final_epochs: int | None
) -> tuple[dict, Evaluation, Recommender]:
    """Train one (model, seed) and evaluate it on the test targets: its row, evaluation and model."""
    start = time.perf_counter()
    model, history = train(name, split, cache=cache, seed=seed, final_epochs=final_epochs, **options)
    # epochs' seconds, the original run's for a cached model (a final-only fit has final_seconds only)
    trained = history.seconds or history.final_seconds
    train_s = history.train_seconds if trained else time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate(model, split, "test", full=full)
    eval_s = time.perf_counter() - start
    best = (history.best_epoch or 1) - 1 if history.epoch else 0
    wrapped = split_name(name)[0] is not None  # its history is the inner model's
    row = {
        "model": name,
        "seed": seed,
        **result.summary(),
        "valid_hr@10": history.valid_hr[best] if history.valid_hr and not wrapped else float("nan"),
        "epochs": len(history.epoch),
        "final_epochs": history.final_epochs,
        "train_s": round(train_s, 2),
        "eval_s": round(eval_s, 2),
    }
    return row, result, model


class _RunStore:
    """The rows of one run in `out` (a `ResultStore`), each under a key of everything it depends
    on: the split, the model's settings and overrides, the ranking mode and the library's code.
    Without `out` it stores nothing and finds nothing."""

    def __init__(self, out, split, models, seeds, settings, overrides, full, oracle, final_epochs):
        self.store = ResultStore(out) if out is not None else None
        if self.store is None:
            return
        fixed = {k: v for k, v in overrides.items() if k != "verbose"}
        code = library_sources()
        self.split = fingerprint("split", split, [])
        self.keys = {
            (name, seed): fingerprint(
                [name, seed, settings_for(name, settings) | fixed, full, final_epochs.get(name)], split, code
            )
            for name in models
            for seed in seeds
        }
        if oracle:
            self.keys[("oracle", 0)] = fingerprint(["oracle", full], split, code)
        rows = self.store.rows()
        if "split" in rows and (rows["split"] != self.split).any():
            raise ValueError(
                f"{self.store.csv} holds results of another split (other data, --split-seed, --negatives, "
                "--targets or --n-negatives): write to another --out, or delete that folder to start over."
            )
        done = sum(self.get(*row) is not None for row in self.keys)
        print(
            f"{self.store.csv}: {done} of {len(self.keys)} rows stored by an earlier run, reused.", flush=True
        )

    def get(self, name: str, seed: int) -> tuple[dict, Evaluation] | None:
        return None if self.store is None else self.store.get(name, seed, self.keys[(name, seed)])

    def put(self, row: dict, result: Evaluation) -> None:
        if self.store is not None:
            key = self.keys[(row["model"], row["seed"])]
            self.store.put(row | {"key": key, "split": self.split}, result)


def oracle_evaluation(
    shop: SyntheticShop, split: Split, which: str = "test", full: bool = False, batch_size: int = 256
) -> Evaluation:
    """Ranks under the generator's true purchase probabilities: the ceiling of the synthetic shop."""
    targets = split.targets(which)
    raw_users = split.data.user_ids[targets.user]
    when = split.events["timestamp"].to_numpy()[targets.row].astype("datetime64[ms]")
    scores = shop.oracle_scores(raw_users, when, split.data.item_ids[targets.candidates])
    ranks = rank_of_positive(scores[:, 0], scores[:, 1:])
    if not full:
        return Evaluation(ranks, repeat=targets.repeat)
    ptr, excluded = split.excluded_items(which)
    all_raw = split.data.item_ids[1:]
    full_ranks = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        s = shop.oracle_scores(
            raw_users[start:stop], when[start:stop], np.broadcast_to(all_raw, (stop - start, len(all_raw)))
        )
        full_ranks[start:stop] = count_beating(s, targets.item[start:stop], ptr[start : stop + 1], excluded)
    return Evaluation(ranks, full_ranks, targets.repeat)


def verdict(paired: pd.DataFrame, against: list[str]) -> str:
    """The claim "the reference model beats every model in `against`", judged on the paired
    differences of `ExperimentResult.paired` (reference minus other) by `judge`: "holds" when
    every interval lies above 0, "does not hold" when one is significantly below 0 after Holm's
    correction over `against`, else "not established"."""
    missing = sorted(set(against) - set(paired.index))
    if missing:
        raise ValueError(f"no paired difference against {missing}; have {sorted(paired.index)}.")
    return judge(paired.loc[against])


def table2(summary: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Overall columns of `ExperimentResult.summary()` (means and CIs) beside the paper's Table 2
    numbers for `dataset` (RetailRocket's for the synthetic shop; none for a shop of your own)."""
    paper = "recobell" if dataset == "recobell" else "retailrocket"
    grouped = [c for c in summary.columns if any(f"_{group}" in c for group in GROUPS)]
    table = summary.drop(columns=grouped)
    for metric in ("hr@10", "ndcg@10") if dataset in ("synthetic", "retailrocket", "recobell") else ():
        table[f"paper {metric} ({paper})"] = PAPER_TABLE2[f"{paper}_{metric}"].reindex(table.index)
    return table


def group_columns(summary: pd.DataFrame) -> list[str]:
    """The repeat/new view of `ExperimentResult.summary()`: share_repeat, then per group HR@10 with
    its CI, NDCG@10 and full-ranking HR@10 (those present)."""
    wanted = ["share_repeat"]
    for group in GROUPS:
        wanted += [f"hr@10_{group}", f"hr@10_{group}_ci", f"ndcg@10_{group}", f"full_hr@10_{group}"]
    return [c for c in wanted if c in summary.columns]


def write_report(result: ExperimentResult, out_dir: str | Path, dataset: str) -> Path:
    """results.csv (one row per model and seed) and summary.md: the overall table (mean, 95% CI,
    the paper's numbers) and the repeat/new table (share of repeat targets, each group's metrics).
    The result's split gives a line on the protocol (targets, negatives)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.stored is None or result.stored.resolve() != out.resolve():  # else it is written already
        result.table.to_csv(out / "results.csv", index=False)
    summary = result.summary()
    by_group, split = group_columns(summary), result.split
    protocol, sampled = "", "the sampled negatives"
    if split is not None:
        protocol = (
            f"Targets: {split.targets_mode}; negatives: {split.negatives}; {len(split.test):,} test users. "
        )
        sampled = f"the stored {split.test.candidates.shape[1] - 1:,} negatives"
    lines = [
        f"# Results on {dataset}",
        "",
        protocol + "Tested models are final fits (trained on every event before each user's test "
        "target, for the epochs chosen on validation). Mean over seeds; 95% two-level bootstrap CI "
        f"(seeds, then test users). Sampled = target vs {sampled}; full = target vs every "
        "allowed item.",
        "",
        markdown_table(table2(summary, dataset)),
        "",
    ]
    if by_group:
        lines += [
            "## Repeat and new targets",
            "",
            "repeat: the target item occurs among the user's events before it (remind); new: it "
            "does not (discover).",
            "",
            markdown_table(summary[by_group]),
            "",
        ]
    (out / "summary.md").write_text("\n".join(lines))
    return out


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a GitHub markdown table (index as the first column)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    header = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(index), *map(cell, row)] for index, row in zip(frame.index, frame.to_numpy(), strict=True)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims, as the paired differences it needs: every (winner, loser) pair
    must favour the winner on `metric` ("hr" or "ndcg" at 10), on all test users or on the users
    of `users` (a group named in `claim_table`'s `groups`). `notebook`: where it is shown in detail."""

    text: str
    pairs: tuple[tuple[str, str], ...]
    metric: str = "hr"
    users: str | None = None
    notebook: str = "08"


TABLE2_ORDER = (("cnn_hybrid", "ite"), ("ite", "caser"), ("caser", "gru4rec"), ("gru4rec", "mf"))
# The paper's claims, tested in notebook 08. "full", "cnn_only", "long_term_only" and "concat_fusion"
# are cnn_hybrid and its variants trained with one seed (notebooks 07 and 09).
PAPER_CLAIMS = [
    Claim("Table 2's order on HR@10: cnn_hybrid > ITE > Caser > GRU4Rec > MF", TABLE2_ORDER),
    Claim("Table 2's order on NDCG@10", TABLE2_ORDER, metric="ndcg"),
    Claim(
        "the hybrid beats every baseline (HR@10)",
        tuple(("cnn_hybrid", other) for other in ("mf", "gru4rec", "caser", "rnn_hybrid", "ite")),
    ),
    Claim("a CNN encoder beats an LSTM one (HR@10)", (("cnn_hybrid", "rnn_hybrid"),)),
    Claim(
        "long + short term beats either alone (HR@10)",
        (("full", "cnn_only"), ("full", "long_term_only")),
        notebook="09",
    ),
    Claim("product fusion beats concatenation (HR@10)", (("full", "concat_fusion"),), notebook="07"),
    Claim(
        "higher NDCG@10 than MF on interest-shift users (the paper: +15%)",
        (("cnn_hybrid", "mf"),),
        metric="ndcg",
        users="interest shift",
        notebook="09",
    ),
]


def per_user_gains(
    result: ExperimentResult | dict[str, Evaluation],
    metrics: tuple[str, ...] = ("hr", "ndcg"),
    full: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """{model: {metric: per-user values at 10, float[n_seeds, n_users]}} of an experiment (every
    seed) or of a dict of evaluations (one seed each), sampled or `full` ranking: the input of
    `claim_table`."""
    if isinstance(result, ExperimentResult):
        models = dict.fromkeys(name for name, _ in result.evaluations)
        return {m: {metric: result.per_seed(m, metric, full=full) for metric in metrics} for m in models}
    return {m: {metric: e.gains(metric, full=full)[None] for metric in metrics} for m, e in result.items()}


def claim_table(
    claims: list[Claim],
    sources: dict[str, dict[str, dict[str, np.ndarray]]],
    groups: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per claim and one pair of columns per source (a protocol: sampled or full ranking,
    the paper's or hard negatives; each from `per_user_gains`): the weakest paired difference the
    claim needs (winner minus loser, mean [95% two-level CI]) and the verdict of `judge`. The
    column "verdict" is the verdict where every tested source agrees, else "mixed" (e.g. sampled
    and full ranking disagree: the source columns say how). A claim whose models or users a source
    lacks gets "not tested" there."""
    rows = []
    for claim in claims:
        row = {"claim": claim.text}
        for source, gains in sources.items():
            needed = {model for pair in claim.pairs for model in pair}
            members = None if claim.users is None else (groups or {}).get(claim.users)
            no_users = claim.users is not None and (members is None or not members.any())
            if not needed <= set(gains) or no_users:
                row[source], row[f"verdict ({source})"] = "", "not tested"
                continue
            differences = []
            for winner, loser in claim.pairs:
                a, b = np.atleast_2d(gains[winner][claim.metric]), np.atleast_2d(gains[loser][claim.metric])
                if members is not None:
                    a, b = a[:, members], b[:, members]
                c = paired_comparison(a, b)
                differences.append(
                    {
                        "pair": f"{winner} - {loser}",
                        "difference": c.difference.mean,
                        "low": c.difference.low,
                        "high": c.difference.high,
                        "p_value": c.p_value,
                    }
                )
            differences = pd.DataFrame(differences)
            weakest = differences.loc[differences["low"].idxmin()]
            row[source] = (
                f"{weakest['pair']}: {weakest['difference']:+.3f} "
                f"[{weakest['low']:+.3f}, {weakest['high']:+.3f}]"
            )
            row[f"verdict ({source})"] = judge(differences)
        tested = {v for k, v in row.items() if k.startswith("verdict (")} - {"not tested"}
        row["verdict"] = tested.pop() if len(tested) == 1 else ("mixed" if tested else "not tested")
        rows.append(row | {"notebook": claim.notebook})
    return pd.DataFrame(rows).set_index("claim")


def judge(differences: pd.DataFrame, alpha: float = 0.05) -> str:
    """The verdict on a claim from its paired differences in the claimed direction, one row per
    pair the claim needs (columns difference, low, high: the 95% CI, p_value: from the same
    bootstrap, so p < 0.05 exactly when the CI excludes 0):

    - "holds": every pair's CI lies above 0. The claim needs all of them, so each is tested at
      alpha with no correction (an intersection-union test keeps its level).
    - "does not hold": some pair is significantly reversed after Holm's correction over the
      claim's pairs (the family: every pair the claim needs; "one of them fails" would otherwise
      fire by chance more often the more pairs a claim has).
    - else "not established".
    """
    adjusted = holm(differences["p_value"].to_numpy())
    if ((differences["difference"].to_numpy() < 0) & (adjusted < alpha)).any():
        return "does not hold"
    return "holds" if (differences["low"] > 0).all() else "not established"
