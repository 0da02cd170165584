"""MatMulNBits with int8 activations (accuracy level 4) stays close to the exact float32 engine."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.engine import Engine


def test_int8_activations_stay_close(tiny_artifacts):
    artifact = tiny_artifacts("llama")
    ids = np.random.default_rng(3).integers(0, 300, (2, 24))
    exact = Engine.load(artifact, 0.0, accuracy_level=0).logits(ids)
    approximate = Engine.load(artifact, 0.0, accuracy_level=4).logits(ids)
    scale = np.abs(exact).max()
    difference = np.abs(exact - approximate).max()
    assert difference > 0, "accuracy level 4 should not be bit-identical to float32 compute"
    assert difference < 0.05 * scale, f"int8 activations moved logits by {difference:.4f} (max |logit| {scale:.2f})"


def test_invalid_accuracy_level_is_rejected(tmp_path):
    from edge_runtime.config import load_settings
    from uniql.errors import ConfigError

    with pytest.raises(ConfigError, match="accuracy_level=2 is invalid"):
        load_settings(None, {"artifact": str(tmp_path), "accuracy_level": 2})
