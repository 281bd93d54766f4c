import matplotlib

matplotlib.use("Agg")

from recsys_helpers.models.base import History  # noqa: E402
from recsys_helpers.plots import training_history  # noqa: E402


def test_training_history_draws_the_loss_and_both_validation_curves_and_marks_the_best_epoch():
    history = History(epoch=[1, 2, 3], loss=[3.0, 2.0, 1.5], valid_hr=[0.1, 0.3, 0.2],
                      valid_ndcg=[0.05, 0.2, 0.1], seconds=[1, 1, 1], best_epoch=2)  # fmt: skip
    fig = training_history(history, loss_label="BCE")
    loss_ax, valid_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == history.loss
    assert loss_ax.get_ylabel() == "BCE"
    assert [list(line.get_ydata()) for line in valid_ax.lines[:2]] == [history.valid_hr, history.valid_ndcg]
    assert list(valid_ax.lines[2].get_xdata()) == [2, 2]  # the best-epoch marker


def test_relative_gains_draws_one_bar_per_model_and_group_with_its_interval():
    import pandas as pd

    from recsys_helpers.plots import relative_gains

    table = pd.DataFrame(
        {"model": ["a", "a", "b", "b"], "users": ["shift", "stable"] * 2, "gain": [0.1, 0.2, -0.1, 0.0],
         "low": [0.0, 0.1, -0.2, -0.1], "high": [0.2, 0.3, 0.0, 0.1]}
    )  # fmt: skip
    ax = relative_gains(table, claim=0.15).axes[0]
    assert sorted(p.get_height() for p in ax.patches) == sorted(table["gain"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["shift", "stable"]
    lines = relative_gains(table.assign(users=[1, 3, 1, 3]), x="users").axes[0]
    assert len(lines.patches) == 0 and len(lines.containers) == 2  # numeric x: one error-bar line per model


def test_user_timeline_has_one_row_per_category_and_an_unknown_row_without_categories():
    import numpy as np
    import pandas as pd

    from recsys_helpers.plots import user_timeline

    times = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])
    events = pd.DataFrame({"item": [1, 2, 1], "timestamp": times, "explicit": [False, False, True]})
    ax = user_timeline(events, np.array([-1, 7, 8]), {"purchase": times[-1]}).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["category 7", "category 8"]
    ax = user_timeline(events, np.full(3, -1)).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["category unknown"]


def test_cnn_filters_draws_one_panel_per_height_and_the_vertical_weights():
    import numpy as np

    from recsys_helpers.models.layers import CaserEncoder
    from recsys_helpers.plots import cnn_filters

    encoder = CaserEncoder(dim=6, heights=(1, 2, 3), filters=4, vertical=2)
    image = np.random.default_rng(0).random((5, 8), dtype=np.float32)
    encoder(image[None])  # build
    axes = cnn_filters(encoder, image, top=3).axes
    assert [ax.get_title() for ax in axes] == ["height 1", "height 2", "height 3", "vertical weights"]
    assert [len(ax.get_xticklabels()) for ax in axes[:3]] == [5, 4, 3]  # L - h + 1 window starts
    assert [t.get_text() for t in axes[3].get_yticklabels()] == ["t-5", "t-4", "t-3", "t-2", "t-1"]


def test_the_shop_figure_has_one_panel_per_mechanism_with_its_knob_in_the_title():
    from recsys_helpers.data import generate_shop
    from recsys_helpers.plots import shop_mechanisms

    fig = shop_mechanisms(generate_shop("ci", seed=0))
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 6 and "item chains (p_chain = 0.4)" in titles
    assert "repeat purchases (w_viewed = 0.45)" in titles


def test_metric_bars_draws_each_models_value_sorted_and_names_the_protocol_in_the_title():
    import pandas as pd

    from recsys_helpers.plots import metric_bars

    summary = pd.DataFrame(
        {"hr@10": [0.7, 0.5], "hr@10_ci": ["[0.6, 0.8]", "[0.4, 0.6]"]}, index=["mf", "floor"]
    )
    fig = metric_bars(summary, ("hr@10",), title="5 seeds, the paper's negatives")
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [0.5, 0.7]  # sorted: the best model on top
    assert fig._suptitle.get_text() == "5 seeds, the paper's negatives"
    assert metric_bars(summary, ("hr@10",))._suptitle is None


def test_calibration_bins_by_equal_counts_and_the_reliability_plot_draws_every_bin():
    import numpy as np
    import pytest

    from recsys_helpers.analysis import calibration
    from recsys_helpers.plots import reliability

    predicted = np.array([0.1, 0.2, 0.15, 0.9, 0.8, 0.85])
    observed = np.array([False, True, False, True, True, False])
    table = calibration(predicted, observed, bins=2)
    assert list(table["n"]) == [3, 3]
    np.testing.assert_allclose(table["predicted"], [0.15, 0.85])
    np.testing.assert_allclose(table["observed"], [1 / 3, 2 / 3])
    assert (table["low"] < table["observed"]).all() and (table["observed"] < table["high"]).all()
    assert table.loc[0, "high"] == pytest.approx(0.7923, abs=1e-4)  # Wilson, 1 of 3
    points = reliability(table).axes[0].lines[0]
    np.testing.assert_allclose(points.get_xdata(), table["predicted"])
    with pytest.raises(ValueError, match="1-d arrays"):
        calibration(predicted, observed[:5])
