import json
import subprocess
import sys

import optuna
import pytest

from recsys_helpers import tuning
from recsys_helpers.experiments import run_experiment
from recsys_helpers.registry import MODEL_NAMES
from recsys_helpers.tuning import SEARCH_SPACES, Choice, Float, Int, load_settings, settings_for, tune
from tests.helpers import synthetic_split

QUICK = {"epochs": 2, "min_steps": 0, "dim": 8, "horizontal_filters": 4, "mlp": (8,)}


@pytest.fixture(scope="module")
def split():
    return synthetic_split("ci", seed=0)[2]


def test_every_learned_model_of_table_2_has_a_valid_search_space():
    assert set(MODEL_NAMES) - set(SEARCH_SPACES) == {"popularity", "recently_viewed"}
    tuning.check_search_spaces()  # keys are ModelConfig fields, ranges are well formed
    assert SEARCH_SPACES["caser"]["components"] == "cnn_only"  # tuned as the paper's row
    assert all("implicit_weight" in SEARCH_SPACES[m] for m in ("ite", "cnn_hybrid", "rnn_hybrid"))


@pytest.mark.parametrize(
    "space, message",
    [
        ({"mf": {"factor": Int(8, 16)}}, "unknown key"),
        ({"mf": {"als_alpha": Float(0.0, 1.0, log=True)}}, "not a valid range"),
        ({"mf": {"factors": Int(16, 8)}}, "not a valid range"),
        ({"mf": {"factors": Choice(())}}, "not a valid range"),
    ],
)
def test_a_bad_search_space_is_one_clear_error(space, message):
    with pytest.raises(ValueError, match=message):
        tuning.check_search_spaces(space)


def test_models_without_anything_to_tune_are_refused():
    for name in ("popularity", "seen_first+caser", "nope"):
        with pytest.raises(ValueError, match="nothing to tune|unknown model"):
            tuning.check_models([name])


def test_suggest_draws_inside_the_space_and_passes_fixed_values_through():
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = tuning.suggest(trial, SEARCH_SPACES["caser"])
    assert params["components"] == "cnn_only"
    assert 3e-4 <= params["learning_rate"] <= 1e-2 and params["dim"] in (32, 50, 64)
    assert 1 <= params["negatives"] <= 32 and isinstance(params["negatives"], int)


def test_tune_gives_every_model_the_same_trials_writes_settings_and_resumes(split, tmp_path):
    settings = tune(split, ["mf", "ite"], trials=3, out=tmp_path, overrides=QUICK, describe={"dataset": "ci"})
    written = json.loads((tmp_path / "settings.json").read_text())
    assert written == json.loads(json.dumps(settings)) and written["dataset"] == "ci"
    assert written["tuning_seed"] == tuning.TUNING_SEED and written["negatives"] == "never_interacted"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for name in ("mf", "ite"):
        entry = settings["models"][name]
        assert entry["finished_trials"] == 3
        assert set(entry["params"]) == set(SEARCH_SPACES[name])
        study = optuna.load_study(study_name=name, storage=storage)
        best = max(t.value for t in study.trials if t.value is not None)
        assert entry["valid_hr@10"] == pytest.approx(best, abs=1e-5)  # the best trial, on validation
    # The same call resumes the stored study: nothing left to run; one more trial runs one.
    assert (
        tune(split, ["mf"], trials=3, out=tmp_path, overrides=QUICK)["models"]["mf"]["finished_trials"] == 3
    )
    assert (
        tune(split, ["mf"], trials=4, out=tmp_path, overrides=QUICK)["models"]["mf"]["finished_trials"] == 4
    )


def test_the_tuning_seeds_are_not_tested_seeds():
    from recsys_helpers.experiments import TEST_SEEDS

    committed = json.loads(tuning.COURSE_SETTINGS.read_text())["tuning_seed"]  # the course study's
    assert len(set(TEST_SEEDS)) == 5 and not {tuning.TUNING_SEED, committed} & set(TEST_SEEDS)
    notebook = json.loads(
        (tuning.COURSE_SETTINGS.parents[3] / "notebooks/08_full_experiments.ipynb").read_text()
    )
    parameters = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert f"SEEDS = {TEST_SEEDS}" in "".join(parameters["source"])  # the course tests these seeds


def test_gru4rec_is_tuned_on_its_authors_dimensions():
    assert {"gru_loss", "gru_samples", "gru_sample_alpha", "gru_bpreg"} <= set(SEARCH_SPACES["gru4rec"])
    assert SEARCH_SPACES["gru4rec"]["gru_loss"].values == ("cross_entropy", "bpr_max")


def test_tuning_more_models_into_the_same_folder_keeps_the_earlier_ones_but_never_mixes_data(split, tmp_path):
    tune(split, ["mf"], trials=2, out=tmp_path, describe={"dataset": "ci"})
    settings = tune(split, ["ite"], trials=2, out=tmp_path, overrides=QUICK, describe={"dataset": "ci"})
    loaded = load_settings(tmp_path / "settings.json")
    assert set(settings["models"]) == {"mf", "ite"} == set(loaded)
    assert loaded.epochs == {"ite": settings["models"]["ite"]["best_epoch"]}  # MF has no epochs to carry
    assert loaded.valid_hr == {name: entry["valid_hr@10"] for name, entry in settings["models"].items()}
    with pytest.raises(ValueError, match="tuned on other data"):
        tune(split, ["mf"], trials=2, out=tmp_path, describe={"dataset": "another shop"})


def test_the_trials_table_and_its_figure_show_every_trial_and_the_best_so_far(split, tmp_path):
    from recsys_helpers.plots import tuning_curves

    tune(split, ["mf", "ite"], trials=3, out=tmp_path, overrides=QUICK)
    trials = tuning.trials_table(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(trials) == 6 and set(trials["model"]) == {"mf", "ite"}
    assert {"factors", "learning_rate", "best_epoch", "seconds"} <= set(trials.columns)
    for _, group in trials.groupby("model"):
        assert group["best_so_far"].is_monotonic_increasing
        assert group["best_so_far"].iloc[-1] == pytest.approx(group["valid_hr@10"].max())
    assert len(tuning_curves(trials).axes[0].lines) == 2
    with pytest.raises(ValueError, match="no tuning study"):
        tuning.trials_table(f"sqlite:///{tmp_path / 'empty.db'}")


def test_an_experiment_uses_the_tuned_settings_and_explicit_overrides_win(split, tmp_path):
    tune(split, ["mf"], trials=2, out=tmp_path)
    settings = load_settings(tmp_path / "settings.json")
    assert settings_for("seen_first+mf", settings) == settings["mf"]  # a wrapper takes its inner's
    result = run_experiment(split, ["mf"], [0], settings=settings, full=False)
    config = result.models[("mf", 0)].config
    assert config.factors == settings["mf"]["factors"] and config.als_alpha == settings["mf"]["als_alpha"]
    result = run_experiment(split, ["mf"], [0], settings=settings, full=False, factors=7)
    assert result.models[("mf", 0)].config.factors == 7


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{not json", "not a settings file"),
        ('{"models": {"nope": {"params": {}}}}', "unknown model 'nope'"),
        ('{"models": {"mf": {"params": {"factor": 3}}}}', "unknown hyper-parameter"),
        ('{"models": {"mf": {"factors": 3}}}', "needs a 'params' map"),
    ],
)
def test_a_bad_settings_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "settings.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recsys_helpers", *args], capture_output=True, text=True, timeout=600
    )


def test_tune_and_experiment_from_the_command_line(tmp_path):
    out = tmp_path / "tuning"
    run = _cli(
        "tune",
        "--dataset",
        "synthetic",
        "--scale",
        "ci",
        "--models",
        "mf",
        "--trials",
        "2",
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "settings.json").read_text())["models"]["mf"]["finished_trials"] == 2
    assert (out / "study.db").exists()
    run = _cli(
        "experiment", "--dataset", "synthetic", "--scale", "ci", "--models", "mf", "--no-full",
        "--settings", str(out / "settings.json"), "--out", str(tmp_path / "exp"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"hyper-parameters: tuned, from {out / 'settings.json'}" in run.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "popularity", "--trials", "2"], "'popularity' has nothing to tune"),
        (["--models", "mf", "--trials", "0"], "--trials must be >= 1"),
    ],
)
def test_tune_argument_mistakes_are_one_line(tmp_path, args, message):
    run = _cli("tune", "--dataset", "synthetic", "--scale", "ci", *args, "--out", str(tmp_path))
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_the_committed_course_settings_cover_every_tunable_model_and_none_sits_at_the_cap():
    from recsys_helpers.tuning import COURSE_SETTINGS, EPOCH_CAP, TUNABLE, default_settings

    assert default_settings("synthetic", "course") == COURSE_SETTINGS and COURSE_SETTINGS.exists()
    assert default_settings("synthetic", "ci") is None and default_settings("retailrocket", "course") is None
    committed = json.loads(COURSE_SETTINGS.read_text())
    assert committed["dataset"] == "synthetic" and committed["scale"] == "course"
    assert set(load_settings(COURSE_SETTINGS)) == set(TUNABLE)
    for name, entry in committed["models"].items():
        # Tuned in today's search space, but for GRU4Rec's own dimensions (loss, samples, exponent,
        # bpreg), added after the committed study: it ran with their defaults (a re-run is due).
        assert set(entry["params"]) <= set(SEARCH_SPACES[name])
        assert entry["finished_trials"] == committed["trials"]  # the same budget for every model
        assert entry["best_epoch"] is None or entry["best_epoch"] < EPOCH_CAP  # early stopping chose it
    assert (COURSE_SETTINGS.parent / "study.db").exists()
    table = tuning.settings_table(COURSE_SETTINGS)
    assert (
        list(table.index) == list(committed["models"]) and "learning_rate=" in table.loc["caser", "settings"]
    )


def test_resolve_settings_names_where_the_settings_come_from(tmp_path):
    from recsys_helpers.tuning import COURSE_SETTINGS, resolve_settings

    settings, source = resolve_settings("default", "synthetic", "course")
    assert settings == load_settings(COURSE_SETTINGS)
    assert source == "hyper-parameters: tuned, from results/tuning/synthetic-course/settings.json"
    assert resolve_settings("default", "synthetic", "ci") == (
        None,
        "hyper-parameters: the paper's defaults (no tuned settings for this data: run `tune`)",
    )
    for off in (None, "none"):
        assert resolve_settings(off, "synthetic", "course")[0] is None
    with pytest.raises(ValueError, match="does not exist"):
        resolve_settings(tmp_path / "missing.json", "synthetic", "course")


KILLED_TUNE = """
import os, signal, sys
from recsys_helpers import tuning
from tests.helpers import synthetic_split

split = synthetic_split("ci", seed=0)[2]
make_objective = tuning._objective


def objective_that_is_killed(*args):
    objective = make_objective(*args)

    def run(trial):
        if trial.number == 2:  # the trial is in the study, running: SIGKILL, as a closed laptop
            os.kill(os.getpid(), signal.SIGKILL)
        return objective(trial)

    return run


tuning._objective = objective_that_is_killed
tuning.tune(split, ["mf", "caser"], 4, sys.argv[1], overrides={QUICK})
"""


def test_a_killed_tune_resumes_to_the_requested_finished_trials(split, tmp_path):
    script = KILLED_TUNE.replace("{QUICK}", repr(QUICK))
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, in mf's third trial
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name="mf", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    settings = tune(split, ["mf", "caser"], 4, tmp_path, overrides=QUICK)  # the same call again
    for name in ("mf", "caser"):
        assert settings["models"][name]["finished_trials"] == 4
    trials = optuna.load_study(study_name="mf", storage=storage).trials
    assert [t.state.name for t in trials].count("COMPLETE") == 4  # the killed one counts for nothing
    drawn = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name == "COMPLETE"]
    assert len(set(drawn)) == 4  # the resumed sampler does not repeat the points drawn before the kill
