"""Figures the notebooks show; each function returns a matplotlib Figure (saved by the caller)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import analysis
from .data import SyntheticShop
from .data.preprocess import Interactions


def long_tails(data: Interactions) -> plt.Figure:
    """Events per user and per item against their rank, log-log: the long tails of Table 1."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (who, counts) in zip(axes, analysis.activity(data).items(), strict=True):
        ranked = np.sort(counts.to_numpy())[::-1]
        ax.loglog(np.arange(1, len(ranked) + 1), ranked, color="tab:blue")
        ax.set(
            xlabel=f"{who} rank", ylabel="events", title=f"events per {who} (median {np.median(ranked):.0f})"
        )
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def funnel(data: Interactions) -> plt.Figure:
    """Share of users reaching each event type (view -> cart -> buy)."""
    table = analysis.funnel(data)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.barplot(x=table.index.astype(str), y=table["share_of_users"], ax=ax, color="tab:blue")
    for i, (share, n) in enumerate(zip(table["share_of_users"], table["events"], strict=True)):
        ax.text(i, share, f"{share:.0%}\n{n:,} events", ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="", ylabel="share of users", ylim=(0, 1.2), title="the funnel")
    fig.tight_layout()
    return fig


def sessions(data: Interactions) -> plt.Figure:
    """Events per session, and hours between a user's consecutive sessions (log scale)."""
    table, gaps = analysis.sessions(data), analysis.gaps_between_sessions(data)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    sns.histplot(table["events"], discrete=True, ax=axes[0], color="tab:blue")
    axes[0].set(xlabel="events per session", title=f"{len(table):,} sessions (30-minute gap)")
    sns.histplot(gaps[gaps > 0], log_scale=True, ax=axes[1], color="tab:orange")
    axes[1].set(xlabel="hours until the next session", title="time between sessions")
    fig.tight_layout()
    return fig


def category_mix(data: Interactions, top: int = 15) -> plt.Figure:
    """Share of events in the most frequent categories."""
    column = "top_category_id" if "top_category_id" in data.events else "category_id"
    counts = data.events[column].value_counts(normalize=True).head(top)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.barplot(
        x=counts.index.astype(str),
        y=counts.to_numpy(),
        ax=ax,
        color="tab:green",
        order=counts.index.astype(str),
    )
    ax.set(xlabel=column, ylabel="share of events", title=f"the {len(counts)} largest categories")
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def shop_mechanisms(shop: SyntheticShop) -> plt.Figure:
    """One panel per mechanism the synthetic shop plants (`analysis.shop_mechanisms`), each with
    its knob in the title."""
    c, m = shop.config, analysis.shop_mechanisms(shop)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.4))
    (taste, intent, chain), (shift, origin, funnel) = axes
    sns.histplot(m["top_taste"], bins=30, ax=taste, color="tab:blue")
    taste.axvline(1 / c.n_categories, color="grey", linestyle=":", label=f"uniform (1/{c.n_categories})")
    taste.set(xlabel="share of taste in the favourite category", ylabel="users", title="long-term taste")
    taste.legend(loc="upper right", fontsize=8)
    _share_bars(intent, {"same": 1 - m["intent_change"].mean(), "another": m["intent_change"].mean()})
    intent.set(xlabel="category of the next session", title="session intent (one category per session)")
    _share_bars(chain, {"follows the chain": m["chain"].mean(), "does not": 1 - m["chain"].mean()})
    chain.set(xlabel="the next view in a session", title=f"item chains (p_chain = {c.p_chain})")
    sns.histplot(m["taste_overlap"], bins=20, binrange=(0, 1), ax=shift, color="tab:purple")
    shift.set(
        xlabel="taste overlap, before vs after", ylabel="users",
        title=f"interest shift ({len(m['taste_overlap']):,} users)",
    )  # fmt: skip
    shares = pd.Series(m["cart_origin"]).value_counts(normalize=True)
    _share_bars(origin, shares.reindex(["this session", "an earlier session", "never viewed"]).to_dict())
    origin.set(xlabel="the cart's item was first viewed", title=f"repeat purchases (w_viewed = {c.w_viewed})")
    sns.barplot(x=["sessions", "carts", "transactions"], y=m["funnel"], ax=funnel, color="tab:blue")
    for i, n in enumerate(m["funnel"]):
        funnel.text(i, n, f"{n:,}", ha="center", va="bottom", fontsize=8)
    funnel.set(
        ylabel="count",
        ylim=(0, 1.15 * m["funnel"].max()),
        title=f"the funnel (p_buy = {c.p_buy}, p_checkout = {c.p_checkout})",
    )
    fig.suptitle(
        f"What the synthetic shop plants ({c.n_users:,} users, {c.n_items:,} items, seed {shop.seed})"
    )
    fig.tight_layout()
    return fig


def _share_bars(ax: plt.Axes, shares: dict[str, float]) -> None:
    sns.barplot(x=list(shares), y=list(shares.values()), ax=ax, color="tab:green")
    for i, share in enumerate(shares.values()):
        ax.text(i, share, f"{share:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="share", ylim=(0, 1.1))


def metric_bars(
    summary: pd.DataFrame, metrics: tuple[str, ...] = ("hr@10", "ndcg@10"), title: str | None = None
) -> plt.Figure:
    """Models' metrics with their 95% CIs (summary from ExperimentResult.summary()); `title` names the
    protocol (seeds, negatives, ranking) above the panels."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.45 * len(summary) + 1.5))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        ci = summary[f"{metric}_ci"].str.strip("[]").str.split(",", expand=True).astype(float)
        order = summary[metric].sort_values().index
        ax.barh(order, summary.loc[order, metric], color="tab:blue", alpha=0.8)
        err = np.vstack(
            [summary.loc[order, metric] - ci.loc[order, 0], ci.loc[order, 1] - summary.loc[order, metric]]
        )
        ax.errorbar(summary.loc[order, metric], order, xerr=err, fmt="none", color="black", capsize=3)
        ax.set(xlabel=metric, title=f"{metric} (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_history(history, loss_label: str = "training loss") -> plt.Figure:
    """Loss and validation HR@10 / NDCG@10 per epoch, with the epoch early stopping kept."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    axes[0].plot(history.epoch, history.loss, marker="o")
    axes[0].set(xlabel="epoch", ylabel=loss_label, title="loss")
    axes[1].plot(history.epoch, history.valid_hr, marker="o", label="HR@10")
    axes[1].plot(history.epoch, history.valid_ndcg, marker="o", label="NDCG@10")
    axes[1].axvline(history.best_epoch, color="grey", linestyle=":", label=f"best epoch {history.best_epoch}")
    axes[1].set(xlabel="epoch", title="validation")
    axes[1].legend()
    fig.tight_layout()
    return fig


def relative_gains(
    table: pd.DataFrame, x: str = "users", series: str = "model", claim: float | None = None, title: str = ""
) -> plt.Figure:
    """Relative gains with their 95% CIs from `evaluation.gain_by_group` (columns gain, low, high):
    bars per `x` value (lines when `x` is numeric, e.g. a window length), one colour per `series`.
    `claim`: a dashed reference line (e.g. the paper's +15%)."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    parts = list(table.groupby(series, sort=False))
    numeric = pd.api.types.is_numeric_dtype(table[x])
    width = 0.8 / len(parts)
    positions = {value: i for i, value in enumerate(dict.fromkeys(table[x]))}
    for j, (name, part) in enumerate(parts):
        where = part[x] if numeric else part[x].map(positions) + (j - (len(parts) - 1) / 2) * width
        err = [part["gain"] - part["low"], part["high"] - part["gain"]]
        if numeric:
            ax.errorbar(where, part["gain"], yerr=err, marker="o", capsize=3, label=name)
        else:
            ax.bar(where, part["gain"], width, yerr=err, capsize=3, label=name, alpha=0.85)
    ax.set_xticks(list(positions) if numeric else list(positions.values()), list(positions))
    if claim is not None:
        ax.axhline(claim, color="black", linestyle="--", linewidth=1, label=f"claimed {claim:+.0%}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel=x, ylabel="relative gain (95% CI)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def user_timeline(
    events: pd.DataFrame, categories: np.ndarray, marks: dict | None = None, title: str = ""
) -> plt.Figure:
    """One user's events over time, one row per item category (most frequent first; "unknown"
    when the log has none): dots for implicit events, crosses for explicit ones. events: rows of
    `split.events`; categories: `Interactions.item_categories()`; marks: {label: time} drawn as
    vertical lines (e.g. the test purchase, a known change of taste)."""
    cats = pd.Series(categories[events["item"].to_numpy()], index=events.index)
    order = {c: i for i, c in enumerate(cats.value_counts().index)}
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(order) + 1.6))
    for explicit, marker in ((False, "o"), (True, "X")):
        part = events[events["explicit"] == explicit]
        label, size = ("purchase / cart", 60) if explicit else ("view", 25)
        ax.scatter(part["timestamp"], cats[part.index].map(order), marker=marker, s=size, label=label)
    for (label, time), style in zip((marks or {}).items(), ("--", ":", "-."), strict=False):
        ax.axvline(time, color="black" if style == "--" else "tab:red", linestyle=style, label=label)
    names = [f"category {c}" if c >= 0 else "category unknown" for c in order]
    ax.set(yticks=list(order.values()), yticklabels=names, xlabel="time", title=title)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def cnn_filters(encoder, image: np.ndarray, top: int = 10) -> plt.Figure:
    """What a trained `CaserEncoder` sees in one L x d window `image`: for each horizontal filter
    height, the responses of its `top` strongest filters at every window start, and the vertical
    filters' weights over the L positions (t-1 = the most recent item)."""
    x = image[None].astype("float32")
    length = image.shape[0]
    fig, axes = plt.subplots(1, len(encoder.horizontal) + 1, figsize=(14, 3.4))
    for ax, conv in zip(axes, encoder.horizontal, strict=False):
        response = conv(x).numpy()[0].T  # [filters, window starts]
        strongest = np.argsort(response.max(axis=1))[::-1][:top]
        starts = [f"t-{length - t}" for t in range(response.shape[1])]
        sns.heatmap(
            response[strongest], ax=ax, cmap="viridis", cbar=False, xticklabels=starts, yticklabels=strongest
        )
        height = conv.kernel_size[0]
        ax.set(title=f"height {height}", xlabel="window start", ylabel="filter" if height == 1 else None)
    positions = [f"t-{length - t}" for t in range(length)]
    weights = encoder.vertical_kernel.numpy()
    sns.heatmap(
        weights,
        ax=axes[-1],
        cmap="RdBu_r",
        center=0,
        annot=True,
        fmt=".2f",
        cbar=False,
        yticklabels=positions,
    )
    axes[-1].set(title="vertical weights", xlabel="vertical filter")
    fig.tight_layout()
    return fig


def tuning_curves(trials: pd.DataFrame) -> plt.Figure:
    """Each model's validation HR@10 per tuning trial (dots: finished trials; pruned ones have no
    final score) and the best so far (line): how far tuning moved each model."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    groups = trials.groupby("model", sort=False)
    for (model, group), color in zip(groups, sns.color_palette(n_colors=groups.ngroups), strict=True):
        done = group[group["state"] == "complete"]
        ax.plot(group["trial"], group["best_so_far"], color=color, label=model)
        ax.scatter(done["trial"], done["valid_hr@10"], color=color, s=12, alpha=0.6)
    ax.set(xlabel="trial", ylabel="validation HR@10", title="tuning: every trial (dots), best so far (lines)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def reliability(table: pd.DataFrame, title: str | None = None, xlabel: str = "predicted") -> plt.Figure:
    """A reliability diagram from `analysis.calibration`: each group's observed rate (95% interval)
    against its mean prediction, with the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    x, y = table["predicted"].to_numpy(float), table["observed"].to_numpy(float)
    err = np.vstack([y - table["low"].to_numpy(float), table["high"].to_numpy(float) - y])
    ax.errorbar(x, y, yerr=err, fmt="o", color="tab:blue", capsize=3)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel="observed rate (95% CI)", title=title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
