import numpy as np
import pandas as pd
import pytest

from recsys_helpers.cli import main
from recsys_helpers.evaluation import evaluate
from recsys_helpers.experiments import (
    markdown_table,
    oracle_evaluation,
    run_experiment,
    train,
    train_many,
    verdict,
    write_report,
)
from recsys_helpers.models import make_model
from recsys_helpers.protocol import leave_one_out
from tests.helpers import synthetic_split


@pytest.fixture(scope="module")
def shop_and_split():
    shop, _, split = synthetic_split("ci", seed=0)
    return shop, split


def test_one_row_per_model_and_seed_plus_the_oracle(shop_and_split, capsys):
    shop, split = shop_and_split
    result = run_experiment(split, ["popularity", "mf"], [0, 1], shop=shop, verbose=0)
    assert result.table[["model", "seed"]].values.tolist() == [
        ["popularity", 0], ["popularity", 1], ["mf", 0], ["mf", 1], ["oracle", 0],
    ]  # fmt: skip
    assert {"hr@10", "ndcg@10", "full_hr@10", "full_ndcg@10", "epochs", "train_s", "eval_s"} <= set(
        result.table
    )
    assert "[mf seed 1] HR@10" in capsys.readouterr().out


def test_a_notebook_gets_one_progress_line_per_model_with_the_means_over_its_seeds(shop_and_split, capsys):
    _, split = shop_and_split
    result = run_experiment(split, ["popularity", "recently_viewed"], [0, 1], progress="models")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["[popularity]", "[recently_viewed]"]
    mean = result.table.groupby("model")["hr@10"].mean()["recently_viewed"]
    assert lines[1].startswith(f"[recently_viewed] 2 seeds: HR@10 {mean:.4f}") and lines[1].endswith(
        "(means)"
    )
    with pytest.raises(ValueError, match="progress must be"):
        run_experiment(split, ["popularity"], [0], progress="bar")


def test_summary_has_cis_that_bracket_the_mean(shop_and_split):
    shop, split = shop_and_split
    summary = run_experiment(split, ["popularity"], [0], shop=shop).summary()
    low, high = (float(x) for x in summary.loc["popularity", "hr@10_ci"].strip("[]").split(","))
    assert low <= summary.loc["popularity", "hr@10"] <= high


def test_the_oracle_beats_every_floor(shop_and_split):
    shop, split = shop_and_split
    table = run_experiment(split, ["popularity", "recently_viewed"], [0], shop=shop).table.set_index("model")
    assert table.loc["oracle", "hr@10"] > table.loc[["popularity", "recently_viewed"], "hr@10"].max()
    assert table.loc["oracle", "full_hr@10"] <= table.loc["oracle", "hr@10"]  # more negatives, harder


def test_a_wrapped_model_reports_no_validation_score_of_its_own(shop_and_split):
    _, split = shop_and_split
    table = run_experiment(split, ["popularity", "seen_first+popularity"], [0]).table.set_index("model")
    assert table.loc["popularity", "valid_hr@10"] > 0
    assert np.isnan(table.loc["seen_first+popularity", "valid_hr@10"])  # not the inner model's
    assert table.loc["seen_first+popularity", "hr@10"] != table.loc["popularity", "hr@10"]


def test_oracle_full_ranks_are_at_least_the_sampled_ranks(shop_and_split):
    shop, split = shop_and_split
    result = oracle_evaluation(shop, split, full=True)
    assert (result.full_ranks >= result.ranks).all()


def test_report_files_hold_results_and_the_papers_numbers(shop_and_split, tmp_path):
    shop, split = shop_and_split
    out = write_report(run_experiment(split, ["mf"], [0]), tmp_path, dataset="synthetic")
    assert list(pd.read_csv(out / "results.csv")["model"]) == ["mf"]
    text = (out / "summary.md").read_text()
    assert "| mf |" in text and "0.1120" in text  # the paper's MF HR@10 on RetailRocket


def test_markdown_table_formats_floats_and_blanks_nans():
    frame = pd.DataFrame({"a": [0.5, float("nan")]}, index=pd.Index(["x", "y"], name="model"))
    assert markdown_table(frame, 2).splitlines() == ["| model | a |", "|---|---|", "| x | 0.50 |", "| y |  |"]


def test_experiment_command_rejects_unknown_models_with_the_valid_names(capsys, tmp_path):
    assert (
        main(
            [
                "experiment",
                "--dataset",
                "synthetic",
                "--scale",
                "ci",
                "--models",
                "mf,bert",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "cnn_hybrid" in capsys.readouterr().err


def test_experiment_command_rejects_a_workers_count_below_one(capsys, tmp_path):
    arguments = ["experiment", "--dataset", "synthetic", "--scale", "ci", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*arguments, "--workers", "0"])
    assert "--workers: a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_experiment_command_writes_results(capsys, tmp_path):
    argv = ["experiment", "--dataset", "synthetic", "--scale", "ci", "--data-dir", str(tmp_path / "data")]
    argv += ["--models", "popularity,recently_viewed", "--seeds", "0", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(table["model"]) == ["popularity", "recently_viewed", "oracle"]


def test_paired_comparison_against_a_reference_model(shop_and_split):
    shop, split = shop_and_split
    result = run_experiment(split, ["popularity", "recently_viewed"], [0], shop=shop)
    table = result.paired("recently_viewed")
    assert list(table.index) == ["popularity", "oracle"]
    assert table.loc["popularity", "difference"] > 0 > table.loc["oracle", "difference"]
    low, diff, high = table.loc["popularity", ["low", "difference", "high"]]
    assert low <= diff <= high
    with pytest.raises(ValueError, match="no results"):
        result.per_user("mf")


def test_the_training_cache_reloads_the_same_model_and_keys_on_the_config(shop_and_split, tmp_path):
    _, split = shop_and_split
    model, history = train("cnn_hybrid", split, cache=tmp_path, epochs=2, seed=0, verbose=0)
    again, cached_history = train("cnn_hybrid", split, cache=tmp_path, epochs=2, seed=0, verbose=1)
    assert len(list(tmp_path.glob("*.keras"))) == 2  # the selection and the final fit; not verbosity
    assert cached_history == history
    assert (evaluate(again, split).ranks == evaluate(model, split).ranks).all()
    train("cnn_hybrid", split, cache=tmp_path, epochs=2, seed=1, verbose=0)
    assert len(list(tmp_path.glob("*.keras"))) == 4  # another seed is another model


def test_the_training_cache_keys_on_the_split(tmp_path):
    _, _, one = synthetic_split("ci", seed=0)
    _, _, other = synthetic_split("ci", seed=1)
    for split in (one, other):
        train("caser", split, cache=tmp_path, epochs=1, verbose=0)
    assert len(list(tmp_path.glob("caser-*.keras"))) == 4


def test_gru4rec_sample_counts_are_part_of_the_key(shop_and_split, tmp_path):
    _, split = shop_and_split
    for gru_samples in (16, 32):
        train("gru4rec", split, cache=tmp_path, epochs=1, verbose=0, gru_samples=gru_samples)
    assert len(list(tmp_path.glob("gru4rec-*.keras"))) == 4


def test_the_tested_model_is_trained_on_everything_before_the_test_target(shop_and_split):
    _, split = shop_and_split
    model, history = train("popularity", split)
    final_items = split.final().train["item"].to_numpy()
    assert (model.item_counts_ == np.bincount(final_items, minlength=split.n_items + 1)).all()
    selection, _ = train("popularity", split, final=False)
    assert selection.item_counts_.sum() == len(split.train) < len(final_items)
    assert len(history.valid_hr) == 1  # a model without epochs is evaluated once on validation


def test_the_final_fit_runs_the_epochs_the_selection_fit_chose(shop_and_split):
    _, split = shop_and_split
    model, history = train("ite", split, epochs=4, patience=1, min_steps=0, seed=0, verbose=0)
    assert history.final_epochs == history.best_epoch == model.config.epochs
    assert len(history.epoch) == min(4, history.best_epoch + 1)  # patience 1 after the best epoch
    with pytest.raises(ValueError, match="not split.final"):
        train("ite", split.final())


def test_a_tuned_epoch_count_skips_the_selection_fit(shop_and_split):
    _, split = shop_and_split
    model, history = train("ite", split, final_epochs=2, seed=0, verbose=0)
    assert history.epoch == [] and history.valid_hr == [] and history.best_epoch is None  # no selection fit
    assert history.final_epochs == model.config.epochs == 2 and history.final_seconds > 0
    direct = make_model("ite", epochs=2, seed=0, verbose=0)
    direct.fit(split.final())  # what the final fit is: seeded, so the same model
    assert (evaluate(model, split, "test").ranks == evaluate(direct, split, "test").ranks).all()
    with pytest.raises(ValueError, match="final_epochs=0"):
        train("ite", split, final_epochs=0)


def test_run_experiment_takes_the_epoch_counts_from_tuned_settings(shop_and_split):
    from recsys_helpers.tuning import Settings

    _, split = shop_and_split
    settings = Settings({"ite": {"dim": 8}, "mf": {"factors": 8}}, epochs={"ite": 2})
    result = run_experiment(
        split, ["mf", "seen_first+ite"], [0], settings=settings, tuned_epochs=True, verbose=0
    )
    table = result.table.set_index("model")
    assert table.loc["seen_first+ite", ["epochs", "final_epochs"]].tolist() == [
        0,
        2,
    ]  # the wrapped model's count
    assert result.models["seen_first+ite", 0].inner.config.dim == 8
    assert table.loc["mf", "valid_hr@10"] > 0  # no tuned count: selected on validation as before
    capped = run_experiment(split, ["ite"], [0], settings=settings, tuned_epochs=True, epochs=1, verbose=0)
    assert capped.table["final_epochs"].tolist() == [1]  # an epochs override caps the tuned count
    with pytest.raises(ValueError, match="needs tuned settings"):
        run_experiment(split, ["ite"], [0], settings={"ite": {}}, tuned_epochs=True)


def test_a_selection_seed_chooses_the_epoch_count_once_for_every_tested_seed(shop_and_split, tmp_path):
    _, split = shop_and_split
    options = {"dim": 8, "epochs": 10, "patience": 2, "min_steps": 0, "learning_rate": 0.01, "verbose": 0}
    result = run_experiment(split, ["ite", "mf"], [0, 3], selection_seed=1, cache=tmp_path, **options)
    _, selection = train("ite", split, seed=1, final=False, cache=tmp_path, **options)  # cached
    assert 1 < selection.best_epoch < 10  # stopped early: the count is chosen, not the cap
    table = result.table.set_index(["model", "seed"])
    assert table.loc["ite", ["epochs", "final_epochs"]].values.tolist() == [[0, selection.best_epoch]] * 2
    assert table.loc["ite", "valid_hr@10"].isna().all()  # no selection fit of the tested seeds
    direct, _ = train("ite", split, seed=3, final_epochs=selection.best_epoch, **options)
    tested = result.models["ite", 3]
    assert (evaluate(tested, split, "test").ranks == evaluate(direct, split, "test").ranks).all()
    assert (table.loc["mf", "valid_hr@10"] > 0).all()  # no epochs to choose: both fits, as before
    with pytest.raises(ValueError, match="also a tested seed"):
        run_experiment(split, ["ite"], [0, 1], selection_seed=1)  # before anything trains


def test_training_in_two_processes_gives_the_models_one_process_trains(shop_and_split, tmp_path, capsys):
    _, split = shop_and_split
    options = {"dim": 8, "epochs": 4, "patience": 1, "min_steps": 0, "learning_rate": 0.01, "verbose": 0}
    models = ["ite", "seen_first+ite", "mf"]  # a wrapped model shares its inner fit; MF is not cached
    runs = {
        workers: run_experiment(split, models, [0, 3], selection_seed=1, cache=tmp_path / str(workers),
                                workers=workers, **options)
        for workers in (1, 2)
    }  # fmt: skip
    for key, model in runs[1].models.items():
        ranks = (evaluate(m, split, "test").ranks for m in (model, runs[2].models[key]))
        assert (next(ranks) == next(ranks)).all(), key
    entries = [sorted(p.name for p in (tmp_path / str(w)).glob("*.history.json")) for w in (1, 2)]
    assert entries[0] == entries[1] and len(entries[0]) == 3  # ite's selection fit + 2 final fits
    log = capsys.readouterr().err  # the selection fit is trained here (one fit), then the two finals:
    assert "training 1 fit" not in log and log.count("training 2 fits in 2 processes:   0%") == 1
    run_experiment(split, models, [0, 3], selection_seed=1, cache=tmp_path / "1", workers=2, **options)
    assert "training" not in capsys.readouterr().err  # every fit cached: no process started
    again = train_many(split, [{"name": "ite", "seed": 3, "final_epochs": 2, **options}] * 2, workers=2)
    assert len(again) == 2 and again[0][1].final_epochs == 2  # no cache: a temporary one, two jobs
    with pytest.raises(ValueError, match="at least 1"):
        run_experiment(split, ["ite"], [0], workers=0)


def test_a_cached_final_only_fit_reports_its_original_training_time(shop_and_split, tmp_path):
    from recsys_helpers.tuning import Settings

    _, split = shop_and_split
    settings = Settings({"ite": {"dim": 8}}, epochs={"ite": 2})
    options = {"settings": settings, "tuned_epochs": True, "cache": tmp_path, "verbose": 0}
    first, again = (run_experiment(split, ["ite"], [0], **options).table["train_s"].item() for _ in range(2))
    assert again == first > 0  # the second run loads the model: its row keeps the training time


def test_the_same_models_can_be_rescored_on_hard_negatives(shop_and_split):
    shop, split = shop_and_split
    result = run_experiment(split, ["popularity", "recently_viewed"], [0], shop=shop)
    hard_split = leave_one_out(split.data, n_negatives=99, negatives="hard", seed=0)
    hard = result.evaluate_on(hard_split)
    assert list(hard.table["model"]) == ["popularity", "recently_viewed", "oracle"]
    assert hard.models["recently_viewed", 0] is result.models["recently_viewed", 0]  # not retrained
    floor, floor_hard = (r.summary().loc["recently_viewed"] for r in (result, hard))
    assert floor_hard["hr@10_new"] < floor["hr@10_new"]  # touched items now compete with new targets
    other_targets = leave_one_out(split.data, n_negatives=99, targets="events", seed=0)
    with pytest.raises(ValueError, match="same test targets"):
        result.evaluate_on(other_targets)


def test_verdict_holds_only_when_every_difference_excludes_zero_upwards():
    paired = pd.DataFrame(
        {
            "difference": [0.03, 0.005, -0.03],
            "low": [0.01, -0.02, -0.05],
            "high": [0.05, 0.03, -0.01],
            "p_value": [0.001, 0.6, 0.01],
        },
        index=["mf", "ite", "caser"],
    )
    assert verdict(paired, ["mf"]) == "holds"
    assert verdict(paired, ["mf", "ite"]) == "not established"  # not significantly worse is not "beats"
    assert verdict(paired, ["mf", "ite", "caser"]) == "does not hold"
    with pytest.raises(ValueError, match="no paired difference against"):
        verdict(paired, ["gru4rec"])


def test_does_not_hold_needs_the_reversal_to_survive_holms_correction_over_the_claims_pairs():
    # One of three pairs is reversed with p = 0.03 (its 95% CI excludes 0); the other two are far
    # from significant. Alone it would refute the claim; as one of three, Holm needs p < 0.05 / 3.
    paired = pd.DataFrame(
        {
            "difference": [-0.02, 0.004, 0.001],
            "low": [-0.038, -0.01, -0.02],
            "high": [-0.002, 0.018, 0.022],
            "p_value": [0.03, 0.5, 0.9],
        },
        index=["caser", "ite", "mf"],
    )
    assert verdict(paired, ["caser"]) == "does not hold"
    assert verdict(paired, ["caser", "ite", "mf"]) == "not established"


def test_a_claim_holds_only_when_every_difference_it_needs_excludes_zero_in_its_direction():
    from recsys_helpers.experiments import Claim, claim_table

    n = 400
    good, bad = np.r_[np.ones(n // 2), np.zeros(n // 2)], np.zeros(n)
    gains = {"a": {"hr": good}, "b": {"hr": bad}, "c": {"hr": bad.copy()}}
    claims = [
        Claim("a beats b", (("a", "b"),)),
        Claim("a > b > c", (("a", "b"), ("b", "c"))),  # b - c is exactly 0: not established
        Claim("b beats a", (("b", "a"),)),
        Claim("a beats d", (("a", "d"),)),  # d was not run
        Claim("a beats b for the first users", (("a", "b"),), users="first"),
        Claim("a beats b for nobody", (("a", "b"),), users="nobody"),
    ]
    groups = {"first": np.arange(n) < n // 2, "nobody": np.zeros(n, dtype=bool)}
    table = claim_table(claims, {"ours": gains}, groups)
    assert list(table["verdict (ours)"]) == [
        "holds", "not established", "does not hold", "not tested", "holds", "not tested"
    ]  # fmt: skip
    assert table.loc["a > b > c", "ours"].startswith("b - c: +0.000")  # the weakest link is shown
    assert table.loc["a beats b for the first users", "ours"].startswith("a - b: +1.000")
