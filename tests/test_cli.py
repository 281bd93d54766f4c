import json
import subprocess
import sys

from recsys_helpers.cli import main


def test_stats_json_prints_the_table1_keys(capsys, tmp_path):
    assert (
        main(["stats", "--dataset", "synthetic", "--scale", "ci", "--data-dir", str(tmp_path), "--json"]) == 0
    )
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {"users", "items", "implicit", "explicit", "sparsity"}
    assert row["users"] > 0 and 0 < row["sparsity"] < 1


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


def main_exit(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code
