"""Figures the notebooks show; each function returns a matplotlib Figure (saved by the caller)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import analysis
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


def metric_bars(summary: pd.DataFrame, metrics: tuple[str, ...] = ("hr@10", "ndcg@10")) -> plt.Figure:
    """Models' metrics with their 95% CIs (summary from ExperimentResult.summary())."""
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
