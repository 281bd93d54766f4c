"""GRU4Rec (Hidasi et al., ICLR 2016; the official implementation's later fixes), session-based.

The idea: a session is a sequence of items; a GRU reads it one item at a time from a zero state
and, after each item, its hidden state scores every item as the next one.

    x_t = dropout(E[i_t])                        input item embedding E: [n_items + 1, d]
    h_t = GRU(x_t, h_{t-1}),  h_0 = 0            one layer, hidden size d, h_0 = 0 at EVERY session start
    s_t(j) = dropout(h_t) . W[j] + b_j           a separate output item embedding W and bias b

Training: every training session (`split.train` grouped by `session`, in time order, its last
`MAX_EVENTS` events; a one-event session gives no example) is one right-padded row; the GRU runs
over all rows of a batch from a zero state, and each step t predicts the next item i_{t+1}.
The loss (`config.gru_loss`, one of the official code's two) scores sampled items only:

    S = {targets of the batch} + {config.gru_samples items drawn per batch,
                                  P(j) ~ count(j)^config.gru_sample_alpha}
    N_t = S without padding and without any copy of the target i = i_{t+1}: its negatives
    r_i = s_t(i), r_j = s_t(j) for j in N_t

    "cross_entropy" (default):  -r_i + log(exp(r_i) + sum_{j in N_t} exp(r_j))
    "bpr_max" (Hidasi & Karatzoglou 2018), with s_j = softmax over N_t of r_j and
                                lambda = config.gru_bpreg:
        -log(sum_{j in N_t} s_j * sigmoid(r_i - r_j) + 1e-24) + lambda * sum_{j in N_t} s_j * r_j^2

    loss = mean over target positions t (padding positions masked out) of the above.

No logQ correction (the official default).

Batches: sessions sorted by length (ties shuffled) are cut where their running target count
passes a multiple of `config.batch_size`, so a batch carries about `batch_size` target positions
(GRU4Rec's own batch counts targets, one per session-parallel slot) and is padded only to its
longest session; the order of the batches is shuffled every epoch. Seeded
(`keras.utils.set_random_seed(config.seed)` and a numpy Generator for batches and samples): the
same seed gives the same scores on a CPU.

How the flaws Hidasi & Czapp (RecSys 2023) found in third-party versions are avoided:
* hidden state not reset at session boundaries: one row per session, from h_0 = 0, in training;
  at evaluation `session_based = True` feeds only the target's own session, from h_0 = 0;
* softmax before sampling / scoring all items before sampling: logits are computed for the
  sampled items S only (an [M, M + gru_samples] matrix), and the softmax is taken over them;
* wrong BPR-max: the sigmoids are weighted by the softmax over the negatives only (not over all
  scores, not uniformly), and the regulariser is lambda * sum_j s_j * r_j^2, as above;
* missing dropout: `config.dropout` on the input embeddings and on the GRU output.

Shapes: sessions int32[B, T + 1] (0 = padding, right), hidden float[B, T, d], logits
float[B * T, B * T + gru_samples]; `score`: users int64[n], sequences int64[n, L] (the session's
items, 0-padded left), candidates int64[n, c] -> float32[n, c]. A target that opens its session
(an all-padding sequence) is scored from h = 0: by the output bias b alone, a learned popularity.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers, ops

from ..protocol import Split
from .base import History, ModelConfig, Recommender, check_score_inputs
from .layers import PACKAGE, Embedding
from .training import train_with_early_stopping

MAX_EVENTS = 51  # events kept of a long session (its last 50 transitions), as evaluation's 50 inputs
GRU4REC_DEFAULTS = {"batch_size": 256}  # target positions per batch (Hidasi et al. use 32..256)
SCORE_BATCH = 256  # users per forward pass when scoring
EXCLUDED = -1e9  # logit of a column that is not a negative for a row
INT_MATRIX = tf.TensorSpec((None, None), tf.int32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GRU4RecNetwork(keras.Model):
    """E -> dropout -> GRU -> dropout, with the output table W and bias b, and its training step.

    call(sequence int[B, T], 0 = padding, masked) -> hidden float[B, T, d]: the state after each
    item (a padding step keeps the previous state; an all-padding prefix keeps h = 0).
    `gru_loss` and `gru_bpreg` choose the training loss (module docstring); `hyperparameters`
    (the recommender's config) travel with the saved network.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        dropout: float = 0.0,
        hyperparameters=None,
        gru_loss: str = "cross_entropy",
        gru_bpreg: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_items, self.dim, self.dropout_rate = n_items, dim, dropout
        self.gru_loss, self.gru_bpreg = gru_loss, gru_bpreg
        self.hyperparameters = hyperparameters or {}
        self.input_items = Embedding(n_items + 1, dim, name="input_items")
        self.input_dropout = layers.Dropout(dropout, name="input_dropout")
        self.gru = layers.GRU(dim, return_sequences=True, name="gru")
        self.hidden_dropout = layers.Dropout(dropout, name="hidden_dropout")
        self.output_items = Embedding(n_items + 1, dim, name="output_items")
        self.output_bias = Embedding(n_items + 1, 1, embeddings_initializer="zeros", name="output_bias")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape):
        self.input_items.build(input_shape)
        self.gru.build((*input_shape, self.dim))
        self.output_items.build((None,))
        self.output_bias.build((None,))
        self.built = True

    def call(self, sequence, training=False):
        x = self.input_dropout(self.input_items(sequence), training=training)
        hidden = self.gru(x, mask=ops.not_equal(sequence, 0), training=training)
        return self.hidden_dropout(hidden, training=training)

    def item_scores(self, hidden, items):
        """hidden float[B, d], items int[B, C] -> h . W[j] + b_j: float[B, C] (only C rows gathered)."""
        return ops.einsum("bd,bcd->bc", hidden, self.output_items(items)) + ops.squeeze(
            self.output_bias(items), -1
        )

    def all_item_scores(self, hidden):
        """hidden float[B, d] -> float[B, n_items + 1]: one matrix product, for full ranking only."""
        return ops.matmul(hidden, ops.transpose(self.output_items.embeddings)) + ops.squeeze(
            self.output_bias.embeddings, -1
        )

    def sampled_loss(self, sessions, negatives, training=True):
        """The sampled loss `self.gru_loss` (module docstring) of sessions int[B, T + 1]
        (right-padded) with shared negatives int[S] -> (mean loss over target positions, number
        of target positions).

        Row t of the logits [M, M + S] (M = B * T) holds r_i in its own column t; its negatives
        are the columns that are neither padding nor a copy of the target i.
        "cross_entropy": -r_i + log(exp(r_i) + sum_j exp(r_j));
        "bpr_max": -log(sum_j s_j sigmoid(r_i - r_j) + 1e-24) + gru_bpreg * sum_j s_j r_j^2,
        s_j = softmax over the negatives of r_j (`bpr_max`)."""
        targets = ops.reshape(sessions[:, 1:], (-1,))  # [M], M = B * T
        hidden = ops.reshape(self(sessions[:, :-1], training=training), (-1, self.dim))  # [M, d]
        sampled = ops.concatenate([targets, ops.cast(negatives, targets.dtype)])  # [M + S]
        logits = ops.matmul(hidden, ops.transpose(self.output_items(sampled))) + ops.squeeze(
            self.output_bias(sampled), -1
        )
        rows = ops.arange(ops.shape(targets)[0])
        own = ops.expand_dims(rows, 1) == ops.expand_dims(ops.arange(ops.shape(sampled)[0]), 0)  # column i
        copy = ops.expand_dims(targets, 1) == ops.expand_dims(sampled, 0)
        padding = ops.expand_dims(sampled == 0, 0)
        positive = ops.take_along_axis(logits, ops.expand_dims(rows, 1), axis=1)[:, 0]  # r_i = s_t(i_{t+1})
        if self.gru_loss == "bpr_max":
            per_target = bpr_max(positive, logits, ~(copy | padding), self.gru_bpreg)
        else:
            per_target = (
                ops.logsumexp(ops.where((copy & ~own) | padding, EXCLUDED, logits), axis=1) - positive
            )
        weight = ops.cast(targets > 0, "float32")
        count = ops.sum(weight)
        loss = ops.sum(per_target * weight) / ops.maximum(count, 1.0)
        return loss, count

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, count = self.sampled_loss(data["sessions"], data["negatives"], training=True)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(loss, sample_weight=count)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def get_config(self):
        return {
            **super().get_config(),
            "n_items": self.n_items,
            "dim": self.dim,
            "dropout": self.dropout_rate,
            "hyperparameters": self.hyperparameters,
            "gru_loss": self.gru_loss,
            "gru_bpreg": self.gru_bpreg,
        }


def bpr_max(positive, scores, negative, bpreg: float):
    """BPR-max (Hidasi & Karatzoglou 2018) per target: positive float[M] (r_i), scores float[M, C]
    (r_j), negative bool[M, C] (which columns are negatives of each row) -> float[M]:

        -log(sum_j s_j * sigmoid(r_i - r_j) + 1e-24) + bpreg * sum_j s_j * r_j^2

    with s_j = exp(r_j) / sum_k exp(r_k), j and k over the row's negatives only. A row without
    negatives gives -log(1e-24) and no gradient.
    """
    weights = ops.softmax(ops.where(negative, scores, EXCLUDED), axis=1) * ops.cast(negative, scores.dtype)
    ranking = ops.sum(weights * ops.sigmoid(ops.expand_dims(positive, 1) - scores), axis=1)
    return -ops.log(ranking + 1e-24) + bpreg * ops.sum(weights * ops.square(scores), axis=1)


def session_sequences(train: pd.DataFrame, max_events: int = MAX_EVENTS) -> np.ndarray:
    """One row per training session with >= 2 events: its items in time order (the last
    `max_events` of a longer session), right-padded with 0 -> int32[n_sessions, <= max_events].

    A row never crosses a session boundary (`session` changes after 30 min of inactivity).
    """
    session = train["session"].to_numpy()
    order = np.lexsort((train["timestamp"].to_numpy(), session))
    session, items = session[order], train["item"].to_numpy()[order]
    starts = np.flatnonzero(np.diff(session, prepend=-1))
    lengths = np.diff(np.r_[starts, len(session)])
    kept = np.minimum(lengths, max_events)
    rows = np.cumsum(lengths >= 2) - 1  # row of each session (valid where it has >= 2 events)
    of_event = np.repeat(np.arange(len(starts)), lengths)
    column = np.arange(len(session)) - starts[of_event] - (lengths - kept)[of_event]
    use = (column >= 0) & (lengths >= 2)[of_event]
    out = np.zeros((int((lengths >= 2).sum()), int(kept.max(initial=0))), dtype=np.int32)
    out[rows[of_event[use]], column[use]] = items[use]
    return out


class GRU4Rec(Recommender):
    """Session-based GRU next-item model (module docstring), trained with a sampled loss.

    Uses from the config: dim (embedding and hidden size), dropout, learning_rate (Adam; the
    `optimizer` field is not used), batch_size (target positions per batch; 256 by default,
    `GRU4REC_DEFAULTS`, as the paper's 1024 needs ~30 epochs to converge), epochs, patience,
    seed, verbose, and GRU4Rec's own gru_loss ("cross_entropy" or "bpr_max"), gru_samples
    (popularity-sampled negatives shared by a batch), gru_sample_alpha (P(item) ~ count^alpha)
    and gru_bpreg (BPR-max's score regularisation). Not used: seq_len (a session is read whole,
    up to 50 items), negatives and the CNN / MLP / ALS fields.
    Learned: network_ (a `GRU4RecNetwork`), n_items_.
    """

    name = "gru4rec"
    session_based = True

    def __init__(self, config: ModelConfig | None = None, **overrides) -> None:
        super().__init__(config or ModelConfig().replace(**GRU4REC_DEFAULTS), **overrides)

    # ------------------------------------------------------------------ training
    def training_sequences(self, split: Split) -> np.ndarray:
        """The training sessions: int32[n_sessions, T + 1], right-padded (see `session_sequences`)."""
        return session_sequences(split.train)

    def fit(self, split: Split) -> History:
        c = self.config
        sessions = self.training_sequences(split)
        if len(sessions) == 0:
            raise ValueError(
                "GRU4Rec needs training sessions with >= 2 events; split.train has none "
                "(use more data or a longer session gap in preprocess)."
            )
        keras.utils.set_random_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        self._set_network(
            GRU4RecNetwork(
                split.n_items,
                c.dim,
                c.dropout,
                self._hyperparameters(),
                gru_loss=c.gru_loss,
                gru_bpreg=c.gru_bpreg,
                name=self.name,
            )
        )
        self.network_.compile(optimizer=keras.optimizers.Adam(c.learning_rate), jit_compile=False)
        n_targets = (sessions[:, 1:] > 0).sum(axis=1)
        counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1)[1:]
        cumulative = np.cumsum(counts.astype(np.float64) ** c.gru_sample_alpha)

        def run_epoch(epoch: int) -> float:
            batches = [
                {"sessions": batch, "negatives": self._sample(cumulative, rng)}
                for batch in _length_bucketed_batches(sessions, n_targets, c.batch_size, rng)
            ]
            dataset = tf.data.Dataset.from_generator(
                lambda: iter(batches),
                output_signature={
                    "sessions": tf.TensorSpec((None, None), tf.int32),
                    "negatives": tf.TensorSpec((None,), tf.int32),
                },
            ).apply(tf.data.experimental.assert_cardinality(len(batches)))
            history = self.network_.fit(dataset, epochs=1, shuffle=False, verbose=c.verbose)
            return history.history["loss"][-1]

        steps = -(-int(n_targets.sum()) // c.batch_size)
        return train_with_early_stopping(
            self, split, run_epoch, self.network_.get_weights, self.network_.set_weights, steps
        )

    def _sample(self, cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """int32[gru_samples] items 1..n_items drawn with replacement, P(j) ~ count(j)^gru_sample_alpha
        (`cumulative`: the running sum of count^alpha)."""
        draws = rng.random(self.config.gru_samples) * cumulative[-1]
        drawn = np.searchsorted(cumulative, draws, side="right")
        return (np.minimum(drawn, len(cumulative) - 1) + 1).astype(np.int32)

    # ------------------------------------------------------------------ scoring
    def score(
        self, users: np.ndarray, sequences: np.ndarray, candidates: np.ndarray, kinds=None
    ) -> np.ndarray:
        """users int[n] (unused), sequences int[n, L] (the session's items, 0-padded left),
        candidates int[n, c] -> float32[n, c]: h_last . W[j] + b_j, each sequence encoded once.

        The c output rows are gathered per user; a list longer than n_items / 4 (full ranking)
        is scored by one product with the whole table W instead, then picked."""
        check_score_inputs(users, sequences, candidates)
        if getattr(self, "network_", None) is None:
            raise ValueError("GRU4Rec is not trained: call fit(split) or GRU4Rec.load(path) first.")
        sequences, candidates = np.asarray(sequences), np.asarray(candidates)
        _check_items(sequences, "sequences", 0, self.n_items_)
        _check_items(candidates, "candidates", 1, self.n_items_)
        gathered, all_items = self._scorers
        score_fn = all_items if 4 * candidates.shape[1] > self.n_items_ else gathered
        out = np.empty(candidates.shape, dtype=np.float32)
        for start in range(0, len(sequences), SCORE_BATCH):
            part = slice(start, start + SCORE_BATCH)
            seq = sequences[part]
            filled = np.flatnonzero((seq != 0).any(axis=0))  # drop all-padding columns: the state stays 0
            seq = seq[:, filled[0] :] if len(filled) else np.zeros((len(seq), 1), seq.dtype)
            out[part] = score_fn(seq.astype(np.int32), candidates[part].astype(np.int32))
        return out

    def _set_network(self, network: GRU4RecNetwork) -> None:
        """Keep the network and compile its two scoring paths once (sequence, candidates int32[B, *])."""
        self.network_, self.n_items_ = network, network.n_items

        def last_state(sequence):
            return network(sequence, training=False)[:, -1]  # the state after the last item

        def gathered(sequence, candidates):
            return network.item_scores(last_state(sequence), candidates)

        def all_items(sequence, candidates):
            return ops.take_along_axis(network.all_item_scores(last_state(sequence)), candidates, axis=1)

        signature = [INT_MATRIX, INT_MATRIX]
        self._scorers = tuple(tf.function(f, input_signature=signature) for f in (gathered, all_items))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the network, with the hyper-parameters inside, as one `<path>.keras` file."""
        if getattr(self, "network_", None) is None:
            raise ValueError("GRU4Rec is not trained: there is nothing to save.")
        path = _keras_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.network_.save(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GRU4Rec:
        """Read a model written by `save`; it scores exactly as before."""
        path = _keras_path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}; write one with model.save(path).")
        network = keras.saving.load_model(path, compile=False)
        settings = network.hyperparameters
        if "n_sample" in settings:
            raise ValueError(
                f"{path} was saved by an older GRU4Rec (its n_sample is now ModelConfig.gru_samples); "
                "train it again and save it."
            )
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["config"].items()}
        model = cls(ModelConfig(**config))
        model._set_network(network)
        return model

    def _hyperparameters(self) -> dict:
        return {"config": asdict(self.config)}


def _length_bucketed_batches(
    sessions: np.ndarray, n_targets: np.ndarray, targets_per_batch: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of whole sessions with about `targets_per_batch` targets each, in shuffled order.

    Sessions are sorted by length (ties in random order), cut where the running target count
    passes a multiple of `targets_per_batch`, and each batch is cut to its longest session.
    """
    order = rng.permutation(len(sessions))
    order = order[np.argsort(n_targets[order], kind="stable")]
    batch_of = (np.cumsum(n_targets[order]) - 1) // targets_per_batch
    groups = np.split(order, np.flatnonzero(np.diff(batch_of)) + 1)
    return [sessions[g, : n_targets[g].max() + 1] for g in (groups[i] for i in rng.permutation(len(groups)))]


def _check_items(items: np.ndarray, what: str, low: int, n_items: int) -> None:
    if items.size and (items.min() < low or items.max() > n_items):
        raise ValueError(
            f"{what} must hold item ids in {low}..{n_items} (0 = padding); got values in "
            f"{items.min()}..{items.max()}. Use ids from the split the model was trained on."
        )


def _keras_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".keras" else path.with_name(path.name + ".keras")
