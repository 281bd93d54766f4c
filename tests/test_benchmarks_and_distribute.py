import importlib.util
from pathlib import Path

import pytest

from recsys_helpers.models import CNNHybrid


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("benchmarks_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forward_flops_count_the_encoder_per_user_and_the_head_per_candidate(bench):
    model = CNNHybrid(
        dim=4, seq_len=3, horizontal_heights=(1, 2), horizontal_filters=3, vertical_filters=1, mlp=(6,)
    )
    per_user, per_candidate = bench.forward_flops(model.build_network(n_users=5, n_items=10))
    # convolutions 3*1*4*3 + 2*2*4*3 = 84, vertical 3*1*4 = 12, projection (3*2 + 1*4)*4 = 40 multiply-adds
    assert per_user == 2 * (84 + 12 + 40)
    # head on x = [s*e, p*e] (8 wide): 8*6 + 6*1 (implicit) + 6*6 + 6*1 (explicit) multiply-adds
    assert per_candidate == 2 * (48 + 6 + 36 + 6)


def test_a_loglog_slope_of_a_linear_cost_is_one(bench):
    assert bench.loglog_slope([1e4, 1e5, 1e6], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
