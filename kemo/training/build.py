"""The model a run trains: its backbone (a preset, random inline, or `model.init_from`'s
run), then frozen and fused as configured under a head, compiled with the run's loss,
metrics and optimizer.

Example:
    backbone, seconds = backbone_for(cfg, inputs)
    model = compiled_model(ctx, inputs, backbone)
"""

from __future__ import annotations

import logging
import time

from kemo.config import Config
from kemo.data.pipeline import steps_per_epoch
from kemo.models import build_classifier, load_backbone
from kemo.models.backbone_layers import freeze_lower_layers, token_embedding, use_fused_attention
from kemo.models.backbones import check_sequence_length
from kemo.models.intensity_heads import build_intensity_model
from kemo.models.transfer import copy_head, find_backbone
from kemo.training.context import TrainContext
from kemo.training.metrics import make_metrics
from kemo.training.optimizer import make_optimizer

log = logging.getLogger(__name__)


def backbone_for(cfg: Config, inputs) -> tuple[object, float]:
    """(the backbone, seconds to load it): `model.init_from`'s run's, weights and all,
    else `model.preset`'s (random inline without one) at the preprocessor's vocabulary."""
    t_load = time.time()
    if inputs.source:  # model.init_from: the source run's backbone, weights and all
        backbone = find_backbone(inputs.source.model)
        backbone.trainable = True  # as a preset loads: this config's freezing applies below
        check_sequence_length(backbone, cfg.model.sequence_length, cfg.model.init_from)
    else:
        backbone = load_backbone(cfg.model, inputs.preprocessor.tokenizer.vocabulary_size())
    return backbone, time.time() - t_load


def compiled_model(ctx: TrainContext, inputs, backbone):
    """`backbone` frozen and fused as configured under the run's head (a classifier's
    sigmoid head, or an intensity head; `model.init_from`: the source run's head rows of
    the labels both have), compiled."""
    cfg = ctx.cfg
    if cfg.model.freeze_token_embeddings:
        token_embedding(backbone).trainable = False  # nested in XLM-R's `embeddings`
    freeze_lower_layers(backbone, cfg.model.freeze_layers)
    if cfg.model.fused_attention:
        use_fused_attention(backbone)
    names = inputs.label_names
    if ctx.intensity:
        model = build_intensity_model(backbone, len(names), cfg.data.max_intensity,
                                      cfg.model.head, cfg.model.pooling, cfg.model.dropout)
    else:
        model = build_classifier(backbone, len(names), cfg.model.pooling, cfg.model.dropout)
    if inputs.source:
        shared = copy_head(inputs.source.model, inputs.source.label_names, model, names)
        log.info(f"init_from {cfg.model.init_from}: backbone and the head of "
                 f"{len(shared)} of {len(names)} labels ({', '.join(shared) or 'none'})")
    steps = steps_per_epoch(len(inputs.train), cfg.train.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps * cfg.train.epochs), loss=inputs.loss,
                  metrics=make_metrics(names, inputs.loss, ctx.intensity))
    return model
