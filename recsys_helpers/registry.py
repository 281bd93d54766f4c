"""The names of the registered models, importable without TensorFlow: the command line checks
its arguments with them before TensorFlow is imported. `recsys_helpers.models.MODELS` maps each
name to its class, in this order (`BEYOND_PAPER` are in `models.BEYOND_PAPER_MODELS`); `WRAPPERS`
combine with any of them."""

MODEL_NAMES = (
    "popularity",
    "recently_viewed",
    "mf",
    "gru4rec",
    "caser",
    "rnn_hybrid",
    "ite",
    "cnn_hybrid",
)
# Models beyond the paper: created by name like the others, not part of "all" (Table 2's rows).
BEYOND_PAPER = ("repeat_hybrid", "repeat_explore")
# Wrappers of any registered model, written "<wrapper>+<model>" (e.g. "seen_first+caser",
# "gated_first+gru4rec").
WRAPPERS = ("seen_first", "gated_first")


def split_name(name: str) -> tuple[str | None, str]:
    """ "seen_first+caser" -> ("seen_first", "caser"); "caser" -> (None, "caser"); likewise
    "gated_first+caser". Unknown names (either part) are a ValueError that lists the valid ones."""
    wrapper, _, inner = name.rpartition("+")
    if inner not in MODEL_NAMES + BEYOND_PAPER or (wrapper and wrapper not in WRAPPERS):
        raise ValueError(
            f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES + BEYOND_PAPER)}, or wrap one as "
            f"{' or '.join(w + '+<model>' for w in WRAPPERS)} (e.g. seen_first+caser)."
        )
    return wrapper or None, inner
