"""The networks that notebooks 05-07 build in plain Keras are the library's: given the same weights,
they compute the same outputs. The hand-written pieces below are those of the notebooks' cells
(06: the window image and the CNN encoder; 07: the fusions, the two-stage head and its loss; 05:
Caser's composition), at tiny sizes; if a library layer changes its names, weights or arithmetic,
these fail before the notebooks do."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from recsys_helpers.models import make_model
from recsys_helpers.models.layers import CaserEncoder, MaskedEmbedding
from recsys_helpers.models.neural import KIND_DIM, embed_window
from recsys_helpers.protocol import KINDS

TINY = {"dim": 8, "horizontal_filters": 3, "vertical_filters": 2, "mlp": (12, 6), "negatives": 3}
N_USERS, N_ITEMS = 7, 11


def tiny_batch(config, n: int = 4, candidates: int = 5) -> dict[str, np.ndarray]:
    """Users, windows (the first row padded on the left, padding kind 0) and candidates."""
    rng = np.random.default_rng(0)
    sequence = rng.integers(1, N_ITEMS + 1, (n, config.seq_len))
    kinds = rng.integers(1, len(KINDS), (n, config.seq_len))
    sequence[0, :2] = kinds[0, :2] = 0
    items = rng.integers(1, N_ITEMS + 1, (n, candidates))
    batch = {"user": rng.integers(0, N_USERS, n), "sequence": sequence, "kinds": kinds, "items": items}
    return {k: v.astype("int32") for k, v in batch.items()}


# ---------------------------------------------------------------------- notebook 06: the encoder
def hand_built_encoder(c):
    """Notebook 06's layers, and its functions window_image(sequence, kinds) -> E and encode(E) -> s_u."""
    parts = {
        "sequence_items": layers.Embedding(N_ITEMS + 1, c.dim),
        "sequence_kinds": layers.Embedding(len(KINDS), KIND_DIM),
        "horizontal": [
            layers.Conv1D(c.horizontal_filters, h, activation="relu") for h in c.horizontal_heights
        ],
        "vertical": layers.Conv2D(c.vertical_filters, (c.seq_len, 1), use_bias=False),
        "project": layers.Dense(c.dim, activation="relu"),
    }

    def lookup(table, ids):
        return table(ids) * ops.expand_dims(ops.cast(ops.not_equal(ids, 0), "float32"), -1)

    def window_image(sequence, kinds):
        rows = [lookup(parts["sequence_items"], sequence)]
        rows += [lookup(parts["sequence_kinds"], kinds)] if c.event_kinds else []
        return ops.concatenate(rows, axis=-1)

    def encode(image):
        pooled = [ops.max(conv(image), axis=1) for conv in parts["horizontal"]]
        maps = ops.transpose(parts["vertical"](ops.expand_dims(image, -1)), (0, 3, 1, 2))
        vertical = ops.reshape(maps, (-1, c.vertical_filters * image.shape[-1]))
        return parts["project"](ops.concatenate([*pooled, vertical], axis=-1))

    return parts, window_image, encode


@pytest.mark.parametrize("event_kinds", [True, False], ids=["typed_window", "item_ids_only"])
def test_the_hand_built_encoder_with_the_library_weights_computes_the_library_s_u(event_kinds):
    model = make_model("cnn_hybrid", **TINY, event_kinds=event_kinds)
    c, network = model.config, model.build_network(N_USERS, N_ITEMS)
    parts, window_image, encode = hand_built_encoder(c)
    batch = tiny_batch(c)
    encode(window_image(batch["sequence"], batch["kinds"]))  # builds our layers
    cnn = network.get_layer("cnn")
    for name in ("sequence_items", "sequence_kinds") if event_kinds else ("sequence_items",):
        parts[name].set_weights(network.get_layer(name).get_weights())
    for ours, theirs in zip(parts["horizontal"], cnn.horizontal, strict=True):
        ours.set_weights(theirs.get_weights())
    parts["vertical"].set_weights([cnn.vertical_kernel.numpy().reshape(c.seq_len, 1, 1, c.vertical_filters)])
    parts["project"].set_weights(cnn.project.get_weights())
    inputs = {k: v for k, v in network.input.items() if k != "items"}
    library_side = keras.Model(inputs, network.get_layer("fusion").input[:-1])
    s_u, _ = library_side({k: batch[k] for k in inputs})
    assert np.any(np.asarray(s_u) > 0)
    np.testing.assert_allclose(encode(window_image(batch["sequence"], batch["kinds"])), s_u, atol=1e-5)


# ---------------------------------------------------------------------- notebook 07: fusion and head
def product_fusion(s_u, p_u, e_j):
    s_u, p_u = ops.expand_dims(s_u, 1), ops.expand_dims(p_u, 1)
    return ops.concatenate([s_u * e_j, p_u * e_j], axis=-1)


def concat_fusion(s_u, p_u, e_j):
    repeat = ops.zeros_like(e_j[..., :1])
    return ops.concatenate([ops.expand_dims(s_u, 1) + repeat, ops.expand_dims(p_u, 1) + repeat, e_j], axis=-1)


def two_stage_head(x, c):
    l2 = keras.regularizers.L2(c.l2) if c.l2 else None
    phi = x
    for i, units in enumerate(c.mlp, start=1):
        phi = layers.Dense(units, activation="relu", kernel_regularizer=l2, name=f"mlp_{i}")(phi)
        phi = layers.Dropout(c.dropout)(phi)
    z_imp = layers.Dense(1, name="implicit_logit")(phi)
    hidden = layers.Dense(c.mlp[-1], activation="relu", kernel_regularizer=l2, name="explicit")(phi)
    z_exp = layers.Dense(1, name="explicit_logit")(hidden)
    return ops.squeeze(z_imp, -1), ops.squeeze(z_exp, -1)


def hand_built_network(c, fusion: str) -> keras.Model:
    """Notebook 07's build_network: the library's window image and encoder (notebook 06 checks
    them), the fusion and the head written out."""
    inputs = {
        "user": keras.Input((), dtype="int32", name="user"),
        "sequence": keras.Input((c.seq_len,), dtype="int32", name="sequence"),
        "kinds": keras.Input((c.seq_len,), dtype="int32", name="kinds"),
        "items": keras.Input((None,), dtype="int32", name="items"),
    }
    image = embed_window(inputs, N_ITEMS, c)
    s_u = CaserEncoder(c.dim, c.horizontal_heights, c.horizontal_filters, c.vertical_filters, name="cnn")(
        image
    )
    p_u = layers.Embedding(N_USERS, c.dim, name="users")(inputs["user"])
    e_j = layers.Embedding(N_ITEMS + 1, c.dim, name="candidate_items")(inputs["items"])
    x = {"product": product_fusion, "concat": concat_fusion}[fusion](s_u, p_u, e_j)
    z_imp, z_exp = two_stage_head(x, c)
    return keras.Model(inputs, {"implicit": z_imp, "explicit": z_exp})


def copy_weights(ours: keras.Model, library_network: keras.Model) -> None:
    """Notebook 07's copy: each library layer gets the weights of our layer that plays its part."""
    head = library_network.get_layer("head")
    theirs = {layer.name: layer for layer in library_network.layers}
    theirs |= {f"mlp_{i}": dense for i, dense in enumerate(head.mlp, start=1)}
    theirs |= {
        "implicit_logit": head.implicit,
        "explicit": head.explicit_hidden,
        "explicit_logit": head.explicit,
    }
    for layer in ours.layers:
        if layer.weights:
            theirs[layer.name].set_weights(layer.get_weights())


@pytest.mark.parametrize("fusion", ["product", "concat"])
def test_the_hand_built_network_with_its_weights_copied_gives_the_library_logits(fusion):
    model = make_model("cnn_hybrid", **TINY, fusion=fusion)
    ours, theirs = hand_built_network(model.config, fusion), model.build_network(N_USERS, N_ITEMS)
    copy_weights(ours, theirs)
    assert len(theirs.weights) == len(ours.weights)  # every library weight got ours
    batch = tiny_batch(model.config)
    expected = theirs(batch)
    for stage, logits in ours(batch).items():
        np.testing.assert_allclose(logits, expected[stage], atol=1e-5)


def test_the_two_stage_loss_written_out_is_the_trainers_loss():
    c = make_model("cnn_hybrid", **TINY, implicit_weight=2.5).config
    rng = np.random.default_rng(1)
    logits = {k: rng.normal(size=(2, 1 + c.negatives)).astype("float32") for k in ("implicit", "explicit")}
    labels = {k: np.zeros((2, 1 + c.negatives), "float32") for k in ("implicit", "explicit")}
    labels["implicit"][:, 0] = 1.0
    labels["explicit"][1, 0] = 1.0

    def bce(y, z):
        return ops.mean(ops.binary_crossentropy(y, z, from_logits=True))

    ours = c.implicit_weight * bce(labels["implicit"], logits["implicit"]) + bce(
        labels["explicit"], logits["explicit"]
    )
    theirs = make_model("cnn_hybrid", **TINY, implicit_weight=2.5).loss_function()(labels, logits)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


# ---------------------------------------------------------------------- notebook 05: Caser
def test_caser_composed_by_hand_from_the_library_encoder_gives_the_library_caser_logits():
    model = make_model("caser", **TINY)
    c, network = model.config, model.build_network(N_USERS, N_ITEMS)
    sequence = keras.Input((c.seq_len,), dtype="int32", name="sequence")
    items = keras.Input((None,), dtype="int32", name="items")
    image = MaskedEmbedding(N_ITEMS + 1, c.dim, name="sequence_items")(sequence)
    z_u = CaserEncoder(
        c.dim, c.horizontal_heights, c.horizontal_filters, c.vertical_filters, c.dropout, name="cnn"
    )(image)
    w_j = layers.Embedding(N_ITEMS + 1, c.dim, name="output_items")(items)
    b_j = layers.Embedding(N_ITEMS + 1, 1, name="output_bias")(items)
    ours = keras.Model(
        {"sequence": sequence, "items": items}, ops.einsum("bd,bcd->bc", z_u, w_j) + ops.squeeze(b_j, -1)
    )
    for layer in ours.layers:
        if layer.weights:
            layer.set_weights(network.get_layer(layer.name).get_weights())
    batch = tiny_batch(c)
    expected = network({k: batch[k] for k in network.input})["implicit"]
    np.testing.assert_allclose(ours({k: batch[k] for k in ("sequence", "items")}), expected, atol=1e-5)
