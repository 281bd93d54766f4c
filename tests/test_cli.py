import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recsys_helpers.cli import main


def stats_json(tmp_path, capsys, *extra) -> dict:
    argv = ["stats", "--dataset", "synthetic", "--scale", "ci", "--data-dir", str(tmp_path), "--json"]
    assert main([*argv, *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_json_prints_the_table1_keys_and_the_protocol_facts(capsys, tmp_path):
    row = stats_json(tmp_path, capsys)
    assert {"users", "items", "implicit", "explicit", "sparsity"} <= set(row)
    assert row["users"] > 0 and 0 < row["sparsity"] < 1
    facts = ("share_repeat_targets", "share_targets_in_last5", "share_test_equals_valid")
    assert all(0 <= row[key] <= 1 for key in facts)


def test_stats_shows_the_doubled_targets_of_the_paper_literal_reading(capsys, tmp_path):
    folded = stats_json(tmp_path, capsys)
    literal = stats_json(tmp_path, capsys, "--targets", "events")
    assert folded["targets"] == "interactions" and literal["targets"] == "events"
    assert literal["share_test_equals_valid"] > 0.2 > 0.05 > folded["share_test_equals_valid"]


def test_experiment_reports_repeat_and_new_targets(capsys, tmp_path):
    out = tmp_path / "out"
    argv = ["experiment", "--dataset", "synthetic", "--scale", "ci", "--data-dir", str(tmp_path)]
    argv += ["--models", "popularity,recently_viewed", "--negatives", "hard", "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out / "results.csv").set_index("model")
    columns = ["share_repeat", "hr@10_repeat", "ndcg@10_repeat", "hr@10_new", "ndcg@10_new"]
    assert set(columns + ["full_hr@10_repeat", "full_hr@10_new", "valid_hr@10"]) <= set(table.columns)
    floor = table.loc["recently_viewed"]
    assert 0 < floor["share_repeat"] < 1
    # Under hard negatives the user's touched items are negatives: the floor only finds repeats.
    assert floor["hr@10_repeat"] > 0.8 > 0.2 > floor["hr@10_new"]
    summary = (out / "summary.md").read_text()
    assert "negatives: hard" in summary and "## Repeat and new targets" in summary


def test_stats_table_shows_the_papers_numbers_beside_ours(capsys, tmp_path):
    assert main(["stats", "--dataset", "synthetic", "--scale", "ci", "--data-dir", str(tmp_path)]) == 0
    assert "36,751" in capsys.readouterr().out


def test_synthesize_writes_retailrocket_files(tmp_path, capsys):
    assert main(["synthesize", "--scale", "ci", "--seed", "2", "--out", str(tmp_path / "shop")]) == 0
    assert (tmp_path / "shop" / "events.csv").read_text().startswith("timestamp,visitorid,event,itemid")


def test_missing_real_data_is_one_line_on_stderr_and_a_nonzero_exit(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recsys_helpers",
            "stats",
            "--dataset",
            "retailrocket",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "events.csv not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_one_readable_line(capsys):
    assert main_exit(["stats", "--dataset", "movielens"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_unknown_targets_or_negatives_are_one_readable_line(capsys):
    base = ["experiment", "--dataset", "synthetic", "--out", "unused"]
    for flag, value in (("--targets", "sessions"), ("--negatives", "unbought")):
        assert main_exit([*base, flag, value]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "invalid choice" in err and value in err


def main_exit(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_a_bad_model_name_is_refused_before_tensorflow_is_imported():
    # A fresh process: the error is one line on stderr and TensorFlow (whose C++ start-up lines
    # would precede it) was never imported.
    check = (
        "import sys; from recsys_helpers.cli import main; "
        "rc = main(['experiment', '--dataset', 'synthetic', '--models', 'caser,foo', '--out', 'unused']); "
        "print(rc, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"]
    assert result.stderr.count("\n") == 1 and "unknown model 'foo'" in result.stderr


def test_a_wrapped_model_name_is_accepted_and_a_bad_wrapper_refused():
    from recsys_helpers.registry import split_name

    assert split_name("seen_first+caser") == ("seen_first", "caser")
    assert split_name("gated_first+gru4rec") == ("gated_first", "gru4rec")
    assert split_name("mf") == (None, "mf")
    for bad in (
        "first_seen+caser",
        "seen_first+foo",
        "seen_first+seen_first+mf",
        "gated_first+seen_first+mf",
    ):
        with pytest.raises(ValueError, match="seen_first\\+<model>"):
            split_name(bad)


TAOBAO = Path(__file__).parent / "fixtures" / "taobao"


def test_stats_of_an_own_shop_from_its_mapping_file_or_from_flags(capsys):
    assert main(["stats", "--dataset", "events", "--mapping", str(TAOBAO / "taobao.toml"), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    flags = [
        "--events", str(TAOBAO / "UserBehavior.csv"),
        "--names", "user_id,item_id,category_id,behavior_type,timestamp",
        "--columns", "user_id=user_id,item_id=item_id,timestamp=timestamp,event=behavior_type",
        "--implicit", "pv", "--explicit", "cart,buy", "--ignore", "fav", "--time-unit", "s",
    ]  # fmt: skip
    assert main(["stats", "--dataset", "events", *flags, "--json"]) == 0
    from_flags = json.loads(capsys.readouterr().out)
    assert from_file == from_flags and from_file["users"] == 10 and from_file["test_targets"] == 10
    # A flag overrides the file's entry: fav counted as a view adds interactions.
    override = ["stats", "--dataset", "events", "--mapping", str(TAOBAO / "taobao.toml"), "--json"]
    assert main([*override, "--implicit", "pv,fav", "--ignore", ""]) == 0
    assert json.loads(capsys.readouterr().out)["implicit"] > from_file["implicit"]


def test_experiment_on_an_own_shop_writes_its_tables_without_the_papers_columns(tmp_path, capsys):
    argv = ["experiment", "--dataset", "events", "--mapping", str(TAOBAO / "taobao.toml")]
    assert main([*argv, "--n-negatives", "5", "--models", "popularity,mf", "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert "the stored 5 negatives" in summary and "paper" not in summary
    assert "no targets" in summary  # every fixture purchase is a repeat: the new group is empty


@pytest.mark.parametrize(
    "argv, message",
    [
        (["stats", "--dataset", "events"], "--dataset events needs --mapping"),
        (["stats", "--dataset", "synthetic", "--explicit", "buy"], "--explicit describes your own shop"),
        (["stats", "--dataset", "events", "--mapping", "nowhere.toml"], "nowhere.toml not found"),
        (
            [
                "stats",
                "--dataset",
                "events",
                "--mapping",
                str(TAOBAO / "taobao.toml"),
                "--columns",
                "user_id",
            ],
            "--columns wants pairs like",
        ),
    ],  # fmt: skip
)
def test_own_shop_argument_mistakes_are_one_readable_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
