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
