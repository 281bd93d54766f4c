"""An equal tuning budget for every learned model: one search space each, one seeded TPE study each.

    settings = tune(split, ["mf", "caser", "cnn_hybrid"], trials=12, out="results/tuning/shop")
    run_experiment(split, models, seeds, settings=load_settings("results/tuning/shop/settings.json"))

Every trial is a selection fit (trained on the events before each validation target, early-stopped
on the validation targets, epoch cap 100) scored by its validation HR@10 (NDCG@10 breaks ties):
test targets are never read. Every model gets the same number of trials and the same sampler
(Optuna's TPE, seeded, 5 random start-up trials: give each model enough trials, e.g. 30, that its
best is not a start-up point); trials that trail the median of earlier trials at the same epoch are
pruned once past epoch PRUNE_AFTER_EPOCH and `min_steps` optimizer steps, so the budget goes to
promising settings without cutting slow starters.

The study lives in an Optuna storage (default: SQLite `study.db` beside the settings; any Optuna
storage URL, so several machines can share one study), one study per model. Re-running `tune`
with the same storage resumes, also after a kill: each model gets trials until it has `trials`
finished ones (a trial cut off by the kill stays marked running and counts for nothing), and
settings.json is rewritten after each model, so the models tuned before a kill keep their settings.
The chosen settings are written as JSON (`settings.json`): for each model, the parameters of its
best trial, with that trial's validation scores. `experiment` and the notebooks read such a file.

This module imports neither TensorFlow nor Optuna at import time: the command line checks its
arguments against `SEARCH_SPACES` first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .registry import BEYOND_PAPER, MODEL_NAMES, split_name
from .store import write_atomically


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    values: tuple


# What every network of the engine in models.neural searches; a plain value is fixed, not searched.
# Ranges were widened where the first course study (12 trials) chose a value on an edge: every
# hybrid and ITE took the most negatives (8), repeat_hybrid an embedding L2 near the top (8.3e-4),
# GRU4Rec a learning rate near the top (0.0093), MF nearly the most factors (229 of 256).
_NETWORK = {
    "learning_rate": Float(3e-4, 1e-2, log=True),
    "dropout": Float(0.0, 0.5),
    "l2": Float(1e-7, 1e-3, log=True),
    "embedding_l2": Float(1e-7, 1e-2, log=True),
    "dim": Choice((32, 50, 64)),
    "negatives": Int(1, 32, log=True),
}
_TWO_STAGE = _NETWORK | {"implicit_weight": Float(0.1, 10.0, log=True)}  # eta
# The proposed models' choices: event kinds in the window, a distinct-items window, and how the
# explicit stage is trained (ModelConfig.explicit_loss): the better one on validation is kept.
_PROPOSED = _TWO_STAGE | {
    "event_kinds": Choice((False, True)),
    "window": Choice(("events", "distinct")),
    "explicit_loss": Choice(("every_row", "ite", "hard")),
}

# The one place where search spaces are declared. Model names are registry names; keys are
# `ModelConfig` fields. Caser is tuned as the paper's row (no user embedding).
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "mf": {
        "factors": Int(16, 512, log=True),
        "als_regularization": Float(1e-3, 10.0, log=True),
        "als_alpha": Float(0.5, 100.0, log=True),
        "als_iterations": Int(5, 30),
    },
    # GRU4Rec as its authors tune it (Hidasi & Czapp 2023): also its loss, the number of shared
    # sampled negatives and their popularity exponent, and BPR-max's score regularisation.
    "gru4rec": {
        "learning_rate": Float(3e-4, 3e-2, log=True),
        "dropout": Float(0.0, 0.5),
        "dim": Choice((32, 50, 64, 100)),
        "batch_size": Choice((64, 128, 256, 512)),
        "gru_loss": Choice(("cross_entropy", "bpr_max")),
        "gru_samples": Choice((0, 512, 2048, 8192)),
        "gru_sample_alpha": Float(0.0, 1.0),
        "gru_bpreg": Float(0.0, 2.0),
    },
    "caser": _NETWORK | {"components": "cnn_only"},
    "ite": _TWO_STAGE | {"explicit_loss": "ite"},  # ITE's own scheme, eta tuned
    "rnn_hybrid": _PROPOSED,
    "cnn_hybrid": _PROPOSED,
    "repeat_hybrid": _PROPOSED,
    # The repeat/explore mixture: its explore head is trained as GRU4Rec is, so it searches GRU4Rec's
    # sampler (batch rows x negatives = the shared sampled items, their popularity exponent), its
    # two losses (the sampled softmax or BPR-max with its regulariser) and learning rates up to
    # GRU4Rec's 0.03 (at 0.005 the default model still improved at epoch 10), plus the weight of
    # non-purchase rows, the window it copies from, and whether a free per-user embedding earns its
    # place (the issue: only if validation says so). Batches of 256 or 512 rows and windows of at
    # most 20 events keep a trial near two minutes on 2 cores: the GRU runs one step per window
    # event per batch, so batch 128 with 50 events is 2x the steps of 2.5x the length. The first
    # study (softmax only) chose values on three edges (d = 32, 1 negative, a 10-event window):
    # d = 16 and a 5-event window widen two of them; one negative per row is the least there is.
    "repeat_explore": {
        "learning_rate": Float(3e-4, 3e-2, log=True),
        "dropout": Float(0.0, 0.5),
        "embedding_l2": Float(1e-7, 1e-2, log=True),
        "dim": Choice((16, 32, 50, 64, 100)),
        "batch_size": Choice((256, 512)),
        "negatives": Int(1, 16, log=True),  # up to 8,192 shared negatives, GRU4Rec's largest choice
        "gru_sample_alpha": Float(0.0, 1.0),
        "explore_loss": Choice(("softmax", "bpr_max")),
        "gru_bpreg": Float(0.0, 2.0),
        "view_weight": Float(0.0, 1.0),
        "copy_len": Choice((5, 10, 20)),
        "user_embedding": Choice((False, True)),
    },
}
TUNABLE = tuple(name for name in MODEL_NAMES + BEYOND_PAPER if name in SEARCH_SPACES)
EPOCH_CAP = 100
# No trial is pruned before this epoch: in the first course study the chosen trials peaked at
# epochs 10-27 (median 16.5), while 6 of GRU4Rec's 7 pruned trials were cut at epoch 5.
PRUNE_AFTER_EPOCH = 15
# The model seed of every trial (and the sampler's): no tested model uses it, so the tested seeds
# (experiments.TEST_SEEDS) are fresh draws, not the seed the settings were chosen on.
TUNING_SEED = 100


def check_models(names: list[str]) -> list[str]:
    """The names, or one ValueError naming the first that is unknown or has nothing to tune."""
    for name in names:
        wrapper, inner = split_name(name)
        if wrapper or inner not in SEARCH_SPACES:
            raise ValueError(
                f"{name!r} has nothing to tune; tunable models: {', '.join(TUNABLE)} (a wrapped model "
                "such as seen_first+caser uses the settings of the model it wraps)."
            )
    return names


def check_search_spaces(spaces: dict[str, dict[str, Any]] = SEARCH_SPACES) -> None:
    """Every key must be a ModelConfig field and every range well formed (ValueError otherwise)."""
    from .models.base import ModelConfig  # numpy only

    known = {f.name for f in fields(ModelConfig)}
    for model, space in spaces.items():
        unknown = sorted(set(space) - known)
        if unknown:
            raise ValueError(f"search space of {model!r}: unknown key(s) {unknown}; valid: {sorted(known)}.")
        for key, value in space.items():
            bad_range = isinstance(value, Float | Int) and not (
                value.low < value.high and (value.low > 0 or not value.log)
            )
            if bad_range or (isinstance(value, Choice) and not value.values):
                raise ValueError(f"search space of {model!r}: {key} = {value} is not a valid range.")


def suggest(trial, space: dict[str, Any]) -> dict[str, Any]:
    """One point of `space` drawn by an Optuna trial (fixed values are passed through)."""
    params = {}
    for key, value in space.items():
        if isinstance(value, Float):
            params[key] = trial.suggest_float(key, value.low, value.high, log=value.log)
        elif isinstance(value, Int):
            params[key] = trial.suggest_int(key, value.low, value.high, log=value.log)
        elif isinstance(value, Choice):
            params[key] = trial.suggest_categorical(key, list(value.values))
        else:
            params[key] = value
    return params


def tune(
    split,
    models: list[str],
    trials: int,
    out: str | Path,
    *,
    storage: str | None = None,
    seed: int = TUNING_SEED,
    study_prefix: str = "",
    describe: dict | None = None,
    spaces: dict[str, dict[str, Any]] = SEARCH_SPACES,
    overrides: dict | None = None,
) -> dict:
    """Tune each model with `trials` finished trials on `split`'s validation targets; write and
    return the settings (see the module docstring). `describe`: what the split is (dataset, scale,
    ...), stored in the settings so a reader knows what they were tuned on. `overrides`: fixed
    hyper-parameters of every trial (e.g. a lower epoch cap for a quick look), not written to the
    settings."""
    import optuna

    check_models(models)
    check_search_spaces(spaces)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}.")
    if split.stage == "final" or len(split.valid) == 0:
        raise ValueError("tune needs the selection split with validation targets (load_split).")
    from .models.training import warn_if_few_validation_targets

    warn_if_few_validation_targets(len(split.valid), "tuning")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{out / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    previous = _previous_settings(out / "settings.json", describe or {})
    settings = {
        **(describe or {}),
        "objective": "validation HR@10 of the selection fit (ties: NDCG@10); test targets unused",
        "sampler": f"TPE (5 random start-up trials), seed {seed}; median pruning after epoch "
        f"{PRUNE_AFTER_EPOCH} and min_steps",
        "tuning_seed": seed,
        "negatives": split.negatives,
        "trials": trials,
        "epoch_cap": EPOCH_CAP,
        "storage": storage,
        "models": previous.get("models", {}),  # models tuned by earlier calls stay
    }
    for name in models:
        study = optuna.create_study(
            study_name=f"{study_prefix}{name}",
            storage=storage,
            direction="maximize",
            load_if_exists=True,
        )
        # A resumed study (after a kill) draws on from where it stopped: the sampler's seed moves on
        # by the trials already there, so its random start-up does not repeat their points.
        study.sampler = optuna.samplers.TPESampler(n_startup_trials=5, seed=seed + len(study.trials))
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=PRUNE_AFTER_EPOCH)
        remaining = trials - len(_finished(study))
        if remaining > 0:
            objective = _objective(name, split, spaces[name], seed, overrides or {})
            study.optimize(objective, n_trials=remaining, catch=())
        settings["models"][name] = _best(study)
        print(
            f"[tune {name}] best validation HR@10 {settings['models'][name]['valid_hr@10']:.4f} "
            f"(trial {settings['models'][name]['trial']}, {len(study.trials)} trials)",
            flush=True,
        )
        text = json.dumps(settings, indent=2) + "\n"  # after each model: a kill keeps those tuned
        write_atomically(out / "settings.json", lambda tmp, text=text: tmp.write_text(text))
    return settings


def _previous_settings(path: Path, describe: dict) -> dict:
    """The settings file already in the output folder ({} if none); one tuned on other data (a
    `describe` entry differs) is a ValueError, so that one file never mixes two datasets."""
    if not path.exists():
        return {}
    previous = json.loads(path.read_text())
    differ = {k: (previous[k], v) for k, v in describe.items() if k in previous and previous[k] != v}
    if differ:
        raise ValueError(f"{path} holds settings tuned on other data {differ}; choose another --out.")
    return previous


def _finished(study) -> list:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in study.trials if t.state in done]


def _objective(name: str, split, space: dict[str, Any], seed: int, overrides: dict):
    import optuna

    from .evaluation import evaluate
    from .models import make_model

    def objective(trial) -> float:
        params = suggest(trial, space)
        model = make_model(name, **({"epochs": EPOCH_CAP, "seed": seed, "verbose": 0} | params | overrides))

        def on_epoch(epoch: int, steps: int, hr: float) -> None:
            trial.report(hr, epoch)
            if steps >= model.config.min_steps and trial.should_prune():
                print(
                    f"[tune {name}] trial {trial.number}: pruned at epoch {epoch} (HR@10 {hr:.4f})",
                    flush=True,
                )
                raise optuna.TrialPruned(f"epoch {epoch}: validation HR@10 {hr:.4f} below the median")

        model.on_epoch = on_epoch
        start = time.perf_counter()
        history = model.fit(split)
        if history.valid_hr:
            best = history.best_epoch - 1
            hr, ndcg = history.valid_hr[best], history.valid_ndcg[best]
        else:  # no epochs (MF): one evaluation
            result = evaluate(model, split, "valid")
            hr, ndcg = result.hr(10), result.ndcg(10)
        trial.set_user_attr("valid_ndcg@10", ndcg)
        trial.set_user_attr("best_epoch", history.best_epoch)
        trial.set_user_attr("epochs", len(history.epoch))
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
        trial.set_user_attr("params", params)
        print(
            f"[tune {name}] trial {trial.number}: validation HR@10 {hr:.4f} NDCG@10 {ndcg:.4f} "
            f"epochs {len(history.epoch)} ({time.perf_counter() - start:.0f} s) {params}",
            flush=True,
        )
        return hr + TIE_BREAK * ndcg  # NDCG@10 breaks ties in HR@10

    return objective


TIE_BREAK = 1e-6  # a trial's objective is HR@10 + TIE_BREAK * NDCG@10 (validation)


def _valid_hr(trial) -> float:
    """The validation HR@10 of a finished trial (its objective without the NDCG tie-break)."""
    return trial.value - TIE_BREAK * trial.user_attrs.get("valid_ndcg@10", 0.0)


def _best(study) -> dict:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"study {study.study_name!r} has no finished trial (all failed or were pruned).")
    best = max(complete, key=lambda t: t.value)
    return {
        "params": best.user_attrs["params"],
        "valid_hr@10": round(_valid_hr(best), 6),
        "valid_ndcg@10": round(best.user_attrs["valid_ndcg@10"], 6),
        "best_epoch": best.user_attrs["best_epoch"],
        "trial": best.number,
        "finished_trials": len(_finished(study)),
        "tuning_seconds": round(sum(t.duration.total_seconds() for t in _finished(study)), 1),
        "pruned_trials": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
    }


def trials_table(storage: str, models: list[str] | None = None):
    """One row per trial of the stored studies (model, trial, state, valid_hr@10, best_so_far,
    best_epoch, seconds and the parameters drawn): what was searched and how the validation score
    moved. `storage`: an Optuna storage URL, e.g. sqlite:///results/tuning/synthetic-course/study.db."""
    import optuna
    import pandas as pd

    rows = []
    for summary in optuna.get_all_study_summaries(storage):
        if models is not None and summary.study_name not in models:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        best = float("-inf")
        for t in study.trials:
            hr = None if t.value is None else _valid_hr(t)
            best = max(best, hr) if hr is not None else best
            rows.append(
                {
                    "model": summary.study_name,
                    "trial": t.number,
                    "state": t.state.name.lower(),
                    "valid_hr@10": hr,
                    "best_so_far": best if best > float("-inf") else None,
                    "best_epoch": t.user_attrs.get("best_epoch"),
                    "seconds": t.duration.total_seconds() if t.duration else None,
                    **t.params,
                }
            )
    if not rows:
        raise ValueError(f"no tuning study in {storage}; run `python -m recsys_helpers tune` first.")
    return pd.DataFrame(rows)


def settings_table(path: str | Path):
    """One row per model of a settings file: its best trial's validation HR@10 and best epoch, the
    finished and pruned trials, the seconds its trials took, and the chosen settings as text."""
    import pandas as pd

    models = json.loads(Path(path).read_text())["models"]
    rows = []
    for name, entry in models.items():
        chosen = ", ".join(f"{k}={_short(v)}" for k, v in entry["params"].items())
        numbers = ("valid_hr@10", "best_epoch", "finished_trials", "pruned_trials", "tuning_seconds")
        rows.append({"model": name, **{k: entry.get(k) for k in numbers}, "settings": chosen})
    return pd.DataFrame(rows).set_index("model")


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class Settings(dict):
    """{model: hyper-parameter overrides}, as `tune` chose them; `epochs`: {model: the epoch count
    at which its chosen trial scored best on validation} (models with epochs only), which lets a
    tested model skip its own selection fit (`experiments.train(final_epochs=...)`); `valid_hr`:
    {model: that trial's validation HR@10}, the best of all trials (so biased upwards)."""

    def __init__(
        self,
        params: dict[str, dict],
        epochs: dict[str, int] | None = None,
        valid_hr: dict[str, float] | None = None,
    ) -> None:
        super().__init__(params)
        self.epochs = dict(epochs or {})
        self.valid_hr = dict(valid_hr or {})


def load_settings(path: str | Path) -> Settings:
    """The `Settings` of a file written by `tune`; a missing file, broken JSON, an unknown model or
    an unknown hyper-parameter is one clear ValueError."""
    from .models.base import ModelConfig

    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"settings file {path} does not exist; write one with `python -m recsys_helpers tune`."
        )
    try:
        models = json.loads(path.read_text())["models"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a settings file of `tune` (JSON with a 'models' map): {error}"
        ) from error
    known = {f.name for f in fields(ModelConfig)}
    overrides, epochs, valid_hr = {}, {}, {}
    for name, entry in models.items():
        try:
            split_name(name)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        params = entry.get("params") if isinstance(entry, dict) else None
        if not isinstance(params, dict):
            raise ValueError(f"{path}: model {name!r} needs a 'params' map of hyper-parameters.")
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{path}: model {name!r} has unknown hyper-parameter(s) {unknown}.")
        overrides[name] = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        if isinstance(entry.get("best_epoch"), int) and entry["best_epoch"] > 0:
            epochs[name] = entry["best_epoch"]
        if isinstance(entry.get("valid_hr@10"), float):
            valid_hr[name] = entry["valid_hr@10"]
    return Settings(overrides, epochs, valid_hr)


def settings_for(name: str, settings: dict[str, dict] | None) -> dict:
    """The overrides of one registry name (a wrapped model takes those of the model it wraps)."""
    return dict((settings or {}).get(split_name(name)[1], {}))


# The committed study and settings of the course shop (in the repository, beside the package:
# present in a clone and an editable install, as the README and Colab use it).
COURSE_SETTINGS = (
    Path(__file__).resolve().parents[1] / "results" / "tuning" / "synthetic-course" / "settings.json"
)


def default_settings(dataset: str, scale: str) -> Path | None:
    """The committed settings file for a dataset, if there is one (today: the course shop), used
    by `experiment` unless --settings says otherwise."""
    return (
        COURSE_SETTINGS if (dataset, scale) == ("synthetic", "course") and COURSE_SETTINGS.exists() else None
    )


def resolve_settings(choice: str | Path | None, dataset: str, scale: str) -> tuple[Settings | None, str]:
    """The settings a run uses, and one line saying where they come from. `choice`: "default" (the
    committed settings of this dataset and scale, if any, else the paper's defaults), None or
    "none" (the paper's defaults), or the path of a settings file written by `tune`."""
    if choice is None or str(choice) == "none":
        return None, "hyper-parameters: the paper's defaults (settings switched off)"
    path = default_settings(dataset, scale) if str(choice) == "default" else Path(choice)
    if path is None:
        return None, "hyper-parameters: the paper's defaults (no tuned settings for this data: run `tune`)"
    root = COURSE_SETTINGS.parents[3]  # the repository: its files are named relative to it
    shown = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
    return load_settings(path), f"hyper-parameters: tuned, from {shown}"


__all__ = [
    "EPOCH_CAP",
    "SEARCH_SPACES",
    "TUNING_SEED",
    "TUNABLE",
    "Choice",
    "Float",
    "Int",
    "Settings",
    "check_models",
    "default_settings",
    "load_settings",
    "resolve_settings",
    "settings_for",
    "settings_table",
    "suggest",
    "trials_table",
    "tune",
]
