"""The notebooks that need item categories complete on a log without them (most click logs):
their category sections say so in one sentence and the rest runs."""

import json
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

from recsys_helpers.data import generate_shop  # noqa: E402

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


@pytest.fixture(scope="module")
def log_without_categories(tmp_path_factory) -> Path:
    folder = generate_shop("ci", seed=0).write(tmp_path_factory.mktemp("shop"))
    for path in [*folder.glob("item_properties*.csv"), folder / "category_tree.csv"]:
        path.unlink(missing_ok=True)
    return folder


@pytest.mark.parametrize(
    "notebook, sentence",
    [
        ("09_ablation_and_interest_shift.ipynb", "This log has no item categories"),
        ("10_case_study.ipynb", "this log has no item categories"),
    ],
)
def test_category_notebooks_complete_on_a_log_without_categories(
    notebook, sentence, log_without_categories, tmp_path_factory
):
    out = tmp_path_factory.mktemp("executed") / notebook
    parameters = {
        "DATASET": "retailrocket",
        "DATA_DIR": str(log_without_categories),
        "EPOCHS": 2,
        "MODEL_CACHE": str(log_without_categories / "models"),
    }
    run = {"parameters": parameters, "cwd": NOTEBOOKS, "kernel_name": "python3", "progress_bar": False}
    papermill.execute_notebook(NOTEBOOKS / notebook, out, **run)
    outputs = [json.dumps(o) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert not any('"output_type": "error"' in o for o in outputs)
    assert any(sentence in o for o in outputs)
