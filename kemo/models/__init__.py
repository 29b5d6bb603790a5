"""Models: backbones from presets or inline configs, and the multi-label classifier."""

from kemo.models.backbones import load_backbone, load_preprocessor
from kemo.models.classifier import MaskedPooling, build_classifier

__all__ = ["load_backbone", "load_preprocessor", "MaskedPooling", "build_classifier"]
