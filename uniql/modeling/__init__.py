"""A functional decoder (Llama family) that runs at full, masked or sliced sizes."""

from uniql.modeling.config import ArchConfig
from uniql.modeling.model import DecoderModel, LayerKept

__all__ = ["ArchConfig", "DecoderModel", "LayerKept"]
