"""`model.freeze_layers`: the embeddings and the lowest N transformer layers stay fixed."""

import keras
import keras_hub
import numpy as np
import pytest

from kemo.errors import InputError
from kemo.models import build_classifier
from kemo.models.backbone_layers import freeze_lower_layers


def _backbone(layers=4):
    return keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=layers, num_heads=2,
                                         hidden_dim=8, intermediate_dim=16,
                                         max_sequence_length=16)


def test_lower_layers_and_embeddings_are_fixed_the_rest_trains():
    backbone = _backbone()
    assert freeze_lower_layers(backbone, 2) == 2
    blocks = backbone.transformer_layers
    assert [b.trainable for b in blocks] == [False, False, True, True]
    for name in ("token_embedding", "position_embedding", "segment_embedding",
                 "embeddings_layer_norm"):
        assert not backbone.get_layer(name).trainable, name
    assert backbone.get_layer("pooled_dense").trainable  # above the encoder
    trainable = {id(v) for v in backbone.trainable_weights}
    assert all(id(v) in trainable for b in blocks[2:] for v in b.weights)
    assert not any(id(v) in trainable for b in blocks[:2] for v in b.weights)


def test_a_train_step_leaves_the_frozen_part_unchanged():
    keras.utils.set_random_seed(0)
    backbone = _backbone()
    freeze_lower_layers(backbone, 3)
    model = build_classifier(backbone, 3, "mean", 0.0)
    model.compile("adam", "binary_crossentropy")
    before = [v.numpy().copy() for v in model.weights]
    x = {"token_ids": np.random.randint(0, 50, (8, 16)), "segment_ids": np.zeros((8, 16), int),
         "padding_mask": np.ones((8, 16), int)}
    model.train_on_batch(x, np.random.randint(0, 2, (8, 3)).astype("float32"))
    trainable = {id(v) for v in model.trainable_weights}
    for v, old in zip(model.weights, before):
        changed = not np.array_equal(v.numpy(), old)
        if id(v) not in trainable:
            assert not changed, v.path
    assert any(not np.array_equal(v.numpy(), o) for v, o in zip(model.weights, before))


def test_all_layers_frozen_trains_the_head_alone_and_too_many_is_refused():
    backbone = _backbone(2)
    assert freeze_lower_layers(backbone, 2) == 0
    # only what follows the encoder (BERT's pooler, unused by kemo's mean/CLS head)
    assert {v.path.split("/")[0] for v in backbone.trainable_weights} == {"pooled_dense"}
    with pytest.raises(InputError, match="'model.freeze_layers': 3 is above the backbone's 2"):
        freeze_lower_layers(_backbone(2), 3)
