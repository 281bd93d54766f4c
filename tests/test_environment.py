"""The supported TensorFlow / Keras range, quiet start-up, and committed notebooks free of noise."""

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_helpers.models import MODELS, make_model
from recsys_helpers.registry import MODEL_NAMES
from recsys_helpers.versions import OLDEST, describe, unsupported

NOTEBOOKS = sorted(Path(__file__).parents[1].glob("notebooks/[0-9]*.ipynb"))
# TensorFlow's C++ start-up lines: oneDNN notice, absl preamble, CUDA probing.
TF_NOISE = re.compile(
    r"oneDNN custom operations|oneDNN supports DT_BOOL|absl::InitializeLog|cuInit|cudart_stub|cuda_platform"
    r"|Memory patch applied"
)


def test_the_registry_names_are_the_models_names_in_order():
    assert tuple(MODELS) == MODEL_NAMES


@pytest.mark.parametrize(
    "found, refused",
    [
        ({"TensorFlow": "2.16.2", "Keras": "3.3.3"}, False),  # the oldest pair make test runs
        ({"TensorFlow": "2.19.1", "Keras": "3.10.0"}, False),
        ({"TensorFlow": "2.21.0", "Keras": "3.15.1"}, False),
        ({"TensorFlow": "2.15.1", "Keras": "3.3.3"}, True),
        ({"TensorFlow": "2.16.2", "Keras": "3.2.1"}, True),
        ({"TensorFlow": "2.21.0", "Keras": "2.15.0"}, True),  # tf-keras (Keras 2) is not Keras 3
        ({"TensorFlow": "2.21.0", "Keras": None}, True),
        ({"TensorFlow": "2.20.0rc1", "Keras": "3.13.0.dev2025"}, False),
    ],
)
def test_versions_older_than_the_oldest_tested_pair_get_one_clear_message(found, refused):
    message = unsupported(found)
    assert (message is not None) == refused
    if refused:
        assert all(str(version) in message.replace("not installed", "None") for version in found.values())
        assert "pip install -U 'tensorflow>=2.16' 'keras>=3.3'" in message


def test_the_oldest_pair_is_the_lower_bound_in_pyproject_and_the_oldest_lock():
    root = Path(__file__).parents[1]
    pyproject, lock = (root / "pyproject.toml").read_text(), (root / "requirements-oldest.txt").read_text()
    for package, name in (("tensorflow", "TensorFlow"), ("keras", "Keras")):
        bound = ".".join(map(str, OLDEST[name]))
        assert re.search(rf'"{package}>={re.escape(bound)}[,"]', pyproject), (package, bound)
        assert re.search(rf"^{package}=={re.escape(bound)}\.\d+$", lock, re.MULTILINE), (package, bound)


@pytest.mark.parametrize(
    "name, overrides, inputs",
    [
        ("ite", {}, {"user", "items"}),
        ("cnn_hybrid", {}, {"user", "sequence", "kinds", "items"}),
        ("cnn_hybrid", {"event_kinds": False}, {"user", "sequence", "items"}),
        ("cnn_hybrid", {"components": "cnn_only"}, {"sequence", "kinds", "items"}),
        ("cnn_hybrid", {"components": "long_term_only"}, {"user", "items"}),
        ("caser", {}, {"sequence", "items"}),
        ("caser", {"components": "full"}, {"user", "sequence", "items"}),
        ("rnn_hybrid", {}, {"user", "sequence", "kinds", "items"}),
        ("repeat_hybrid", {}, {"user", "sequence", "kinds", "history", "history_kinds", "items"}),
        (
            "repeat_explore",
            {},
            {"history", "history_kinds", "history_buckets", "slots", "gate_features", "items"},
        ),
    ],
)
def test_networks_declare_only_the_inputs_they_read(name, overrides, inputs):
    # Keras < 3.14 refuses a functional model with an input its outputs do not depend on.
    network = make_model(name, **overrides).build_network(n_users=7, n_items=11)
    assert set(network.input) == inputs


def test_importing_the_models_prints_nothing_on_stderr():
    # a first op, a boolean transpose (GRU masks), which oneDNN builds log about once, and a first
    # generator dataset (GRU4Rec's batches), at which tf.data logs that it tuned malloc
    code = (
        "import recsys_helpers.models, tensorflow as tf; tf.transpose(tf.zeros((1, 1)) > 0); "
        "spec = tf.TensorSpec((), tf.int32); "
        "[x for x in tf.data.Dataset.from_generator(lambda: iter([1]), output_signature=spec)]"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert not TF_NOISE.search(result.stderr), result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_carry_no_tensorflow_startup_lines(path):
    cells = json.loads(path.read_text())["cells"]
    for number, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + json.dumps(output.get("data", {}))
            assert not TF_NOISE.search(text), f"{path.name} cell {number}: {text[:200]}"


def test_the_versions_command_says_whether_this_environment_is_supported(capsys):
    from recsys_helpers.cli import main

    assert main(["versions"]) == 0
    assert capsys.readouterr().out.strip() == describe()
    assert ": supported (the library needs TensorFlow >= 2.16 and Keras >= 3.3)" in describe()


def test_a_tensorflow_log_level_set_before_the_import_survives_it_in_jupyter():
    # In an interactive session (Jupyter) TensorFlow sets its logger to INFO when it first logs;
    # the level a notebook chose before importing the library must stay.
    code = (
        "import sys, logging; sys.ps1 = '>>> '; logging.getLogger('tensorflow').setLevel(logging.ERROR); "
        "import recsys_helpers.models; print(logging.getLogger('tensorflow').level)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == [str(logging.ERROR)], result.stderr
