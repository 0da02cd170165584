"""Quality measurements: perplexity on text windows and zero-shot multiple-choice accuracy.

Both take a ``LogitsFn`` (input ids (B, T) -> logits (B, T, V)), so they score any model the
same way: the float32 reference, a sliced model, or the edge engine.
"""
