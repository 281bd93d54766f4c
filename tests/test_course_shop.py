"""The course shop's facts that notebooks 04, 07, 09 and 10 print, recomputed: a regression test
of the generator, the protocol and the analysis helpers at the course scale.

nbval re-executes only the notebooks whose checked cells are cheap (01 and 02, see the Makefile):
re-running 04-10 at the course scale to check these lines would train every model of the course
(about 20 minutes on 2 cores). The numbers below are the committed notebooks' outputs; a change to
the generator or the protocol that moves them must re-execute those notebooks.
"""

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.analysis import case_study_target, interest_shift
from recsys_helpers.experiments import load_split


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return load_split("synthetic", tmp_path_factory.mktemp("course"), "course", seed=0)


def test_notebook_04_the_split_and_the_sessions(course):
    split, _ = course
    assert (len(split.test), split.n_items, split.events["session"].nunique()) == (2_478, 3_929, 11_361)
    in_session = (split.sequences("test", 50, same_session=True) > 0).sum(axis=1)
    assert f"{np.mean(in_session == 0):.1%}" == "0.0%"  # of test purchases open their session


def test_notebook_07_the_training_interactions(course):
    split, _ = course
    assert len(split.train) == 35_358
    assert f"{split.train['explicit'].mean():.1%}" == "3.0%"


def test_notebook_09_the_interest_shift_groups(course):
    split, _ = course
    shift = interest_shift(split)
    group = np.where(
        shift["shift"].isna(), "too little history", np.where(shift["shifted"], "shift", "stable")
    )
    counts = pd.Series(group).value_counts().to_dict()
    assert counts == {"too little history": 1_344, "shift": 1_004, "stable": 130}


def test_notebook_10_the_case_study_candidates(course):
    split, shop = course
    targets = split.test
    when = split.events["timestamp"].to_numpy()[targets.row]
    shifted = shop.shifted_at(split.data.user_ids[targets.user], when)
    shift = interest_shift(split)
    category = split.data.item_categories()[targets.item]
    recent = (category == shift["recent_top_category"].to_numpy()) & (
        category != shift["history_top_category"]
    )
    assert (shifted.sum(), (shifted & recent).sum(), (shifted & recent & ~targets.repeat).sum()) == (
        255,
        169,
        73,
    )
    chosen, rule = case_study_target(split, shifted, shift)  # without two models' ranks: longest history
    assert split.data.user_ids[targets.user[chosen]] == 218_098 and "recent category" in rule
