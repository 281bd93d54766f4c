"""A fast training step for networks with large embedding tables (TensorFlow backend).

Keras' Adam turns the row-sparse gradient of an embedding lookup into a dense update of the
whole table, every step: with ~80k items x 50 dimensions in two tables that update, not the
network, dominates the step time on a CPU. `LazyAdamTrainer` updates embedding tables
row-sparsely ("lazy" Adam, as in TensorFlow Addons' LazyAdam): only the rows looked up in a batch
get their moments and values updated. This differs from Adam: moments of rows absent from a
batch are not decayed, so a rarely seen item takes a larger step when it reappears. Every other
weight gets Keras' own Adam. The tables should be `layers.Embedding` (ours): Keras' own lookup
reads the whole table, which makes each in-place row update copy it. Several steps run inside
one compiled call (`steps_per_call`).

tf.distribute: the trainer takes a strategy (default: the current one, so plain single-device
code is unchanged). With more than one replica (MirroredStrategy over GPUs or CPU devices) each
step is `strategy.run` on a 1/n share of the batch, every replica scales its loss by 1/n and the
gradients are summed over replicas, so a step follows the mean gradient of the whole batch.
Batch-size rule: the global batch stays the paper's 1024 rows, split across replicas, and the
learning rate is unchanged. The optimisation is then the single-device one (up to summation order
and dropout draws), which keeps results comparable with the paper; a larger batch for more
replicas (with a linearly scaled rate) is the caller's choice through `ModelConfig.batch_size` and
`learning_rate`. The row-sparse update works under several replicas too: the table gradients are
summed over replicas (`all_reduce`) and every replica applies the same update to its own copy of
the tables and moments, so the copies stay equal (tested over 2 CPU devices).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf


def weighted_bce(weights: dict[str, float]) -> Callable[[dict, dict], tf.Tensor]:
    """loss = sum_k weight_k * mean(mask_k * BCE-with-logits(labels_k, logits_k)) (the two-stage
    task). labels[f"{k}_mask"], where given, says which entries count (the mean is over all
    entries, as ITE's indicator loss); without it every entry counts."""

    def loss(labels: dict, logits: dict) -> tf.Tensor:
        terms = []
        for k, w in weights.items():
            entries = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels[k], logits=logits[k])
            if f"{k}_mask" in labels:
                entries = entries * labels[f"{k}_mask"]
            terms.append(w * tf.reduce_mean(entries))
        return tf.add_n(terms)

    return loss


def sampled_softmax(labels: dict, logits: dict) -> tf.Tensor:
    """Cross-entropy of a softmax over each row's sampled candidates (the positive in column 0)."""
    return tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=labels["implicit"], logits=logits["implicit"])
    )


class LazyAdamTrainer:
    """Train `network` on batches of {inputs} -> {labels}: loss_fn(labels, logits) + network.losses.

    lazy=False gives every variable Keras' plain Adam (the reference the lazy update is checked against).
    strategy: a tf.distribute strategy whose scope created `network`'s variables (default: the
    current one; see the module docstring).
    """

    def __init__(
        self,
        network: keras.Model,
        loss_fn: Callable[[dict, dict], tf.Tensor],
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        steps_per_call: int = 16,
        lazy: bool = True,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if self.replicas > 1:
            outside = [
                v.path
                for v in network.variables
                if not self.strategy.extended.variable_created_in_scope(v.value)
            ]
            if outside:
                raise ValueError(
                    f"network variables {outside[:3]} were not created under the strategy's scope; "
                    "build the network inside `with strategy.scope():`."
                )
        self.network, self.loss_fn = network, loss_fn
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.steps_per_call = steps_per_call
        tables = {
            id(layer.embeddings) for layer in network.layers if isinstance(layer, keras.layers.Embedding)
        }
        tables = tables if lazy else set()
        self.sparse = [v for v in network.trainable_variables if id(v) in tables]
        self.dense = [v for v in network.trainable_variables if id(v) not in tables]
        with self.strategy.scope():
            self.dense_optimizer = keras.optimizers.Adam(learning_rate, beta_1, beta_2, epsilon)
            self.dense_optimizer.build(self.dense)
            self.moments = [
                (
                    tf.Variable(tf.zeros(v.shape), trainable=False),
                    tf.Variable(tf.zeros(v.shape), trainable=False),
                )
                for v in self.sparse
            ]
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._run = tf.function(
            self._steps if self.replicas == 1 else self._distributed_steps, reduce_retracing=True
        )

    def loss(self, labels: dict, logits: dict) -> tf.Tensor:
        penalties = self.network.losses
        return self.loss_fn(labels, logits) + (tf.add_n(penalties) if penalties else 0.0)

    def _step(self, batch: dict, labels: dict) -> tf.Tensor:
        """One optimiser step on one (replica's share of a) batch; returns its loss / replicas."""
        with tf.GradientTape() as tape:
            logits = self.network(batch, training=True)
            loss = self.loss(labels, logits)
            if self.replicas > 1:
                loss = loss / self.replicas  # gradients are summed over replicas: their mean
        grads = tape.gradient(loss, self.sparse + self.dense)
        self._sparse_update(grads[: len(self.sparse)])
        self.dense_optimizer.apply_gradients(zip(grads[len(self.sparse) :], self.dense, strict=True))
        return loss

    def _step_at(self, inputs: dict, labels: dict, i: tf.Tensor) -> tf.Tensor:
        return self._step({k: v[i] for k, v in inputs.items()}, {k: v[i] for k, v in labels.items()})

    def _steps(self, inputs: dict, labels: dict) -> tf.Tensor:
        """Run one step per leading index of the stacked batches; return the mean loss."""
        n_steps = tf.shape(next(iter(labels.values())))[0]
        total = tf.constant(0.0)
        for i in tf.range(n_steps):
            total += self._step_at(inputs, labels, i)
        return total / tf.cast(n_steps, tf.float32)

    def _distributed_steps(self, inputs, labels, n_steps: tf.Tensor) -> tf.Tensor:
        """`_steps` with each step run by every replica on its share (per-replica inputs)."""
        total = tf.constant(0.0)
        for i in tf.range(n_steps):
            losses = self.strategy.run(self._step_at, args=(inputs, labels, i))
            total += self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
        return total / tf.cast(n_steps, tf.float32)

    def _call(self, inputs: dict, labels: dict) -> tf.Tensor:
        """Run stacked batches {name: [steps, batch, ...]}; with replicas, replica r gets rows r::n."""
        if self.replicas == 1:
            return self._run(inputs, labels)
        n = self.replicas

        def shares(arrays: dict):
            return self.strategy.experimental_distribute_values_from_function(
                lambda context: {
                    k: tf.constant(v[:, context.replica_id_in_sync_group :: n]) for k, v in arrays.items()
                }
            )

        return self._run(shares(inputs), shares(labels), tf.constant(len(next(iter(labels.values())))))

    def _sparse_update(self, grads) -> None:
        if self.replicas > 1 and grads:
            # Every replica applies the same summed gradient to its own copy of the tables and
            # moments (variables with aggregation NONE), so the mirrored copies stay equal.
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        rate = self.learning_rate * tf.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        for variable, grad, (m, v) in zip(self.sparse, grads, self.moments, strict=True):
            if not isinstance(grad, tf.IndexedSlices):
                grad = tf.IndexedSlices(tf.convert_to_tensor(grad), tf.range(tf.shape(grad)[0]))
            rows, position = tf.unique(grad.indices)
            g = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
            m_rows = self.beta_1 * tf.gather(m, rows) + (1.0 - self.beta_1) * g
            v_rows = self.beta_2 * tf.gather(v, rows) + (1.0 - self.beta_2) * tf.square(g)
            m.scatter_update(tf.IndexedSlices(m_rows, rows))
            v.scatter_update(tf.IndexedSlices(v_rows, rows))
            variable.value.scatter_sub(
                tf.IndexedSlices(rate * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows)
            )

    def fit_epoch(
        self, inputs: dict, labels: dict, batch_size: int, rng: np.random.Generator, verbose: int = 0
    ):
        """One shuffled pass over all rows (the last incomplete batch is dropped); mean loss.

        With several replicas the batch is rounded down to a multiple of them (equal shares).
        """
        n = len(next(iter(labels.values())))
        batch_size = max(self.replicas, batch_size - batch_size % self.replicas)
        order = rng.permutation(n)
        n_batches = max(1, n // batch_size)
        order = order[: n_batches * batch_size] if n >= batch_size else order
        batch_size = min(batch_size, n)
        progress = keras.utils.Progbar(n_batches, verbose=verbose, unit_name="step") if verbose else None
        losses = []
        for start in range(0, n_batches, self.steps_per_call):
            stop = min(start + self.steps_per_call, n_batches)
            rows = order[start * batch_size : stop * batch_size].reshape(stop - start, batch_size)
            loss = self._call(
                {k: v[rows] for k, v in inputs.items()}, {k: v[rows] for k, v in labels.items()}
            )
            losses.append(float(loss) * (stop - start))
            if progress:
                progress.update(stop, [("loss", float(loss))])
        return sum(losses) / n_batches
