"""Masked LoRA recovery fine-tuning of a sorted model over every pruning rate of its artifact."""

from uniql.finetune.config import FinetuneConfig
from uniql.finetune.lora import PRUNABLE_LINEARS, LoraAdapters, LoraDecoderModel, merge_adapters
from uniql.finetune.trainer import FinetuneResult, MaskedLoraTrainer, rate_probabilities

__all__ = [
    "FinetuneConfig", "FinetuneResult", "LoraAdapters", "LoraDecoderModel", "MaskedLoraTrainer",
    "PRUNABLE_LINEARS", "merge_adapters", "rate_probabilities",
]
