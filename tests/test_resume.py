"""Nothing lost: an interrupted experiment resumes, a damaged model cache heals, and the import
direction of the package has no circle."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_helpers import experiments
from recsys_helpers.cli import _model_list, build_parser, main
from recsys_helpers.experiments import run_experiment, train, write_report
from recsys_helpers.registry import MODEL_NAMES
from recsys_helpers.store import ModelCache, ResultStore
from tests.helpers import synthetic_split


@pytest.fixture(scope="module")
def shop_and_split():
    shop, _, split = synthetic_split("ci", seed=0)
    return shop, split


@pytest.fixture
def counted_runs(monkeypatch):
    """The (model, seed) pairs `run_experiment` trains, in order; `stop_after` = n raises
    KeyboardInterrupt when the (n + 1)-th would start (a Ctrl-C or a kill mid-run)."""
    calls, original = [], experiments._run_one
    state = {"stop_after": None}

    def run_one(name, seed, *args):
        if state["stop_after"] is not None and len(calls) == state["stop_after"]:
            raise KeyboardInterrupt
        calls.append((name, seed))
        return original(name, seed, *args)

    monkeypatch.setattr(experiments, "_run_one", run_one)
    return calls, state


MODELS, SEEDS = ["popularity", "mf"], [0, 1]


def test_an_interrupted_run_keeps_its_finished_rows_and_the_same_call_resumes_from_them(
    shop_and_split, tmp_path, counted_runs, capsys
):
    shop, split = shop_and_split
    calls, state = counted_runs
    state["stop_after"] = 1
    with pytest.raises(KeyboardInterrupt):
        run_experiment(split, MODELS, SEEDS, shop=shop, out=tmp_path, verbose=0)
    assert calls == [("popularity", 0)]
    assert pd.read_csv(tmp_path / "results.csv")[["model", "seed"]].values.tolist() == [["popularity", 0]]

    state["stop_after"] = None
    result = run_experiment(split, MODELS, SEEDS, shop=shop, out=tmp_path, verbose=0)
    assert calls == [("popularity", 0), ("popularity", 1), ("mf", 0), ("mf", 1)]  # the first one reused
    assert "1 of 5 rows stored by an earlier run" in capsys.readouterr().out
    fresh = run_experiment(split, MODELS, SEEDS, shop=shop, verbose=0)
    pd.testing.assert_frame_equal(
        result.summary().drop(columns=["seeds"]), fresh.summary().drop(columns=["seeds"])
    )  # the stored per-user ranks give the same summary and intervals as a run in one go
    stored = pd.read_csv(tmp_path / "results.csv")
    assert stored[["model", "seed"]].values.tolist() == [
        ["popularity", 0], ["popularity", 1], ["mf", 0], ["mf", 1], ["oracle", 0],
    ]  # fmt: skip


def test_a_second_run_of_the_same_command_trains_nothing(shop_and_split, tmp_path, counted_runs, capsys):
    shop, split = shop_and_split
    calls, _ = counted_runs
    run_experiment(split, MODELS, SEEDS, shop=shop, out=tmp_path, verbose=0)
    first = capsys.readouterr().out
    again = run_experiment(split, MODELS, SEEDS, shop=shop, out=tmp_path, verbose=0)
    assert len(calls) == 4
    assert "4 of 5 rows" not in first and "5 of 5 rows stored by an earlier run" in capsys.readouterr().out
    assert not again.models  # nothing was trained, so no model is in memory
    with pytest.raises(ValueError, match="without `out`"):
        again.evaluate_on(split)


def test_changed_settings_do_not_reuse_stale_rows(shop_and_split, tmp_path, counted_runs):
    _, split = shop_and_split
    calls, _ = counted_runs
    run_experiment(split, ["mf"], [0], out=tmp_path, factors=8, verbose=0)
    run_experiment(split, ["mf"], [0], out=tmp_path, factors=16, verbose=0)
    run_experiment(split, ["mf"], [0], out=tmp_path, factors=16, verbose=0)
    assert calls == [("mf", 0), ("mf", 0)]
    assert len(pd.read_csv(tmp_path / "results.csv")) == 1  # the stale row was replaced


def test_a_folder_holds_the_results_of_one_split(shop_and_split, tmp_path):
    _, split = shop_and_split
    _, _, other = synthetic_split("ci", seed=1)
    run_experiment(split, ["popularity"], [0], out=tmp_path)
    with pytest.raises(ValueError, match="another split"):
        run_experiment(other, ["popularity"], [0], out=tmp_path)


def test_report_only_writes_the_summary_from_the_stored_rows_and_trains_nothing(
    shop_and_split, tmp_path, counted_runs, capsys
):
    _, split = shop_and_split
    calls, _ = counted_runs
    with pytest.raises(ValueError, match="no stored rows"):
        run_experiment(split, MODELS, [0], out=tmp_path, report_only=True)
    run_experiment(split, ["popularity"], [0], out=tmp_path)
    result = run_experiment(split, MODELS, [0], out=tmp_path, report_only=True)
    assert calls == [("popularity", 0)]
    assert "not computed yet (left out of the report): mf seed 0" in capsys.readouterr().out
    write_report(result, tmp_path, "synthetic")
    assert "| popularity |" in (tmp_path / "summary.md").read_text()
    assert list(pd.read_csv(tmp_path / "results.csv")["key"].str.len()) == [16]  # not overwritten


def test_the_cli_resumes_into_its_out_folder_with_a_model_cache(tmp_path, capsys):
    command = ["experiment", "--dataset", "synthetic", "--scale", "ci", "--models", "caser", "--epochs", "1"]
    command += ["--n-negatives", "20", "--no-full", "--settings", "none", "--out", str(tmp_path)]
    assert main(command) == 0
    assert len(list((tmp_path / "models").glob("caser-*.history.json"))) == 2  # selection and final fit
    assert main(command) == 0
    assert "2 of 2 rows stored by an earlier run" in capsys.readouterr().out  # caser and the oracle
    assert main([*command, "--report-only"]) == 0
    assert main([*command, "--no-cache", "--epochs", "2"]) == 0
    assert len(list((tmp_path / "models").glob("*.history.json"))) == 2  # --no-cache kept nothing
    assert main([*command, "--seeds", "1,2", "--selection-seed", "7"]) == 0
    # one selection fit (seed 7), and the final fit of seed 2: seed 1's 1-epoch final fit is cached
    assert len(list((tmp_path / "models").glob("*.history.json"))) == 2 + 2


def test_all_combines_with_other_model_names_and_help_lists_the_models():
    assert _model_list("all,repeat_hybrid", MODEL_NAMES) == [*MODEL_NAMES, "repeat_hybrid"]
    assert _model_list("mf,all", MODEL_NAMES) == ["mf", *(n for n in MODEL_NAMES if n != "mf")]  # once
    experiment = build_parser()._subparsers._group_actions[0].choices["experiment"]
    assert all(name in experiment.format_help() for name in [*MODEL_NAMES, "repeat_hybrid"])


# ------------------------------------------------------------------------------------ the cache
def _damage(kind: str):
    def empty(entry):
        entry.with_name(entry.name + ".keras").write_bytes(b"")

    def truncated(entry):
        keras_file = entry.with_name(entry.name + ".keras")
        keras_file.write_bytes(keras_file.read_bytes()[:1000])

    def broken_history(entry):
        entry.with_name(entry.name + ".history.json").write_text('{"epoch": [1, 2')

    return {"empty": empty, "truncated": truncated, "broken history": broken_history}[kind]


@pytest.mark.parametrize("kind", ["empty", "truncated", "broken history"])
def test_a_damaged_cache_entry_is_reported_in_one_line_and_trained_again(
    kind, shop_and_split, tmp_path, capsys
):
    _, split = shop_and_split
    model, _ = train("caser", split, cache=tmp_path, epochs=1, seed=0, verbose=0, final=False)
    (history_file,) = tmp_path.glob("caser-*.history.json")
    entry = history_file.with_name(history_file.name.removesuffix(".history.json"))
    _damage(kind)(entry)
    again, history = train("caser", split, cache=tmp_path, epochs=1, seed=0, verbose=0, final=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if "model cache" in line]
    assert len(lines) == 1 and entry.name in lines[0] and "training it again" in lines[0]
    assert ("not a complete .keras zip file" in lines[0]) == (kind != "broken history")
    assert json.loads(history_file.read_text())["epoch"] == history.epoch == [1]  # healed on disk
    users = split.test.user[:5]
    sequences = np.zeros((5, 5), dtype=np.int64)
    candidates = split.test.candidates[:5]
    np.testing.assert_allclose(  # training is seeded: the retrained model is the same model
        again.score(users, sequences, candidates), model.score(users, sequences, candidates), atol=1e-5
    )


def test_an_entry_without_its_history_file_does_not_count_and_leaves_no_temporary_files(
    shop_and_split, tmp_path
):
    _, split = shop_and_split
    train("caser", split, cache=tmp_path, epochs=1, seed=0, verbose=0, final=False)
    (history_file,) = tmp_path.glob("caser-*.history.json")
    history_file.unlink()  # a kill after the model files were moved in, before the history
    stem = history_file.name.removesuffix(".history.json")
    from recsys_helpers.models import Caser

    assert ModelCache(tmp_path).load("caser", stem.removeprefix("caser-"), Caser) is None
    train("caser", split, cache=tmp_path, epochs=1, seed=0, verbose=0, final=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}{suffix}" for suffix in (".history.json", ".json", ".keras")
    )


def test_the_result_store_replaces_a_row_of_the_same_model_and_seed(tmp_path):
    from recsys_helpers.evaluation import Evaluation

    store = ResultStore(tmp_path)
    evaluation = Evaluation(np.array([0, 5, 20]), None, np.array([True, False, True]))
    store.put({"model": "mf", "seed": 0, "hr@10": 2 / 3, "key": "a"}, evaluation)
    store.put({"model": "mf", "seed": 0, "hr@10": 0.5, "key": "b"}, evaluation)
    assert store.get("mf", 0, "a") is None
    row, loaded = store.get("mf", 0, "b")
    assert row["hr@10"] == 0.5 and loaded.full_ranks is None
    np.testing.assert_array_equal(loaded.ranks, evaluation.ranks)
    np.testing.assert_array_equal(loaded.repeat, evaluation.repeat)


# --------------------------------------------------------------------------- import direction
def test_evaluation_imports_no_model_code():
    code = (
        "import sys, recsys_helpers.evaluation; "
        "print([m for m in sys.modules if m.startswith('recsys_helpers.models')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_code_key_ignores_docstrings_comments_and_layout_but_not_code(tmp_path):
    from recsys_helpers.store import code_of

    versions = {
        "original": 'def f(x):\n    """Twice x."""\n    return 2 * x\n',
        "documented": '"""A module."""\n\ndef f(x):  # a comment\n    """2x."""\n    return 2*x\n',
        "changed": 'def f(x):\n    """Twice x."""\n    return 3 * x\n',
    }
    codes = {}
    for name, text in versions.items():
        (tmp_path / f"{name}.py").write_text(text)
        codes[name] = code_of(tmp_path / f"{name}.py")
    assert codes["documented"] == codes["original"] != codes["changed"]
