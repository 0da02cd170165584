"""An onnxruntime session for an artifact at one rate, with prefill and KV-cache decode steps."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edge_runtime.graph import build_decoder_model, layer_shapes
from uniql.artifact import Artifact

logger = logging.getLogger(__name__)


# Growth step, in tokens, of the KV cache buffers. A reallocated buffer has room for the current
# tokens plus 1 to KV_CACHE_STEP more, so decoding copies the cache once every KV_CACHE_STEP tokens.
KV_CACHE_STEP = 256


@dataclass
class KVCache:
    """Per-layer key and value buffers ``[B, Hkv, C, k_i]`` plus the attention mask ``[B, S]``.

    Only the first ``S`` (``length``) positions of each buffer contain keys and values. The session
    writes new ones into the buffers in place, so ``Engine.forward`` shares the buffers between
    the cache it reads and the cache it returns until they have to grow.

    NOTE: a forward from a cache overwrites the newer tokens of every cache returned after it
    that shares its buffers, so a caller must extend only the latest cache of a sequence.
    """

    keys: list[np.ndarray]
    values: list[np.ndarray]
    mask: np.ndarray

    @property
    def length(self) -> int:
        return self.mask.shape[1]

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0


@dataclass
class Engine:
    """A decoder at one rate, ready to run."""

    artifact: Artifact
    rate: float
    session: ort.InferenceSession
    head_dims: list[int]
    weight_bytes: int
    build_seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    # The session reads these buffers in place (add_external_initializers), so they must live as
    # long as the session does.
    weights: list[ort.OrtValue] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, artifact: Artifact | Path | str, rate: float, threads: int = 0, accuracy_level: int = 0) -> "Engine":
        """Verify and assemble the tensors of ``rate``, build the graph and open a session.

        ``accuracy_level`` is MatMulNBits' compute type: 0 (float32 activations, matches the
        PyTorch reference) or 4 (int8 activations, faster, not exact).
        Raises ``uniql.errors.ArtifactError`` when a band is missing or fails its digest check.
        """
        if not isinstance(artifact, Artifact):
            artifact = Artifact.open(artifact)
        started = time.perf_counter()
        tensors = artifact.load_tensors(rate)
        external_weights: dict[str, np.ndarray] = {}
        model = build_decoder_model(tensors, artifact.config, external_weights, accuracy_level)
        head_dims = [shape.head_dim for shape in layer_shapes(tensors, artifact.config)]
        weight_bytes = sum(getattr(value, "nbytes", 0) for value in tensors.values())
        # The weights now live in external_weights as copies, so the band blobs can go.
        del tensors

        # Memory, measured on SmolLM2-135M (rates 0 and 0.35, 2 CPU cores, onnxruntime 1.32.0):
        # - The weights reach the session as external initializers instead of proto data, which
        #   drops the ModelProto, its serialized bytes and onnxruntime's parsed copy. Peak RSS
        #   fell from 631 to 360 MiB at rate 0 and from 491 to 283 MiB at rate 0.35, with
        #   bit-identical logits. The cost: onnxruntime only borrows these buffers, so after
        #   MatMulNBits prepacks its weights both our arrays and the packed copies stay resident.
        # - Prepacking stays on, because without it MatMulNBits decoded at 1.2 instead of 20
        #   tokens/s and its logits changed.
        # - The CPU memory arena stays on, because without it peak RSS after a 256-token prefill
        #   rose (421 instead of 360 MiB at rate 0) and decoding got about 10 % slower.
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        weights = [ort.OrtValue.ortvalue_from_numpy(array) for array in external_weights.values()]
        options.add_external_initializers(list(external_weights), weights)
        serialized = model.SerializeToString()
        del model
        session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
        elapsed = time.perf_counter() - started
        logger.info("built engine at rate %g: %d layers, %.1f MB of weights, %.2f s",
                    rate, len(head_dims), weight_bytes / 1e6, elapsed)
        return cls(artifact, rate, session, head_dims, weight_bytes, elapsed, weights=weights)

    @property
    def config(self) -> dict[str, Any]:
        return self.artifact.config

    @property
    def max_context(self) -> int:
        return int(self.config["max_position_embeddings"])

    def empty_cache(self, batch: int) -> KVCache:
        kv_heads = self.config["num_key_value_heads"]
        empty = [np.zeros((batch, kv_heads, 0, dim), dtype=np.float32) for dim in self.head_dims]
        return KVCache(keys=list(empty), values=list(empty), mask=np.zeros((batch, 0), dtype=np.int64))

    def _reserve(self, cache: KVCache, length: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return buffers of ``cache`` that hold ``length`` tokens, reallocated when they are too short."""
        if length <= cache.capacity:
            return cache.keys, cache.values
        capacity = min(self.max_context, -(-(length + KV_CACHE_STEP) // KV_CACHE_STEP) * KV_CACHE_STEP)
        past = cache.length

        def grow(buffer: np.ndarray) -> np.ndarray:
            batch, heads, _, dim = buffer.shape
            # np.empty is enough because GroupQueryAttention reads only the first seqlens_k + 1 positions.
            grown = np.empty((batch, heads, capacity, dim), dtype=np.float32)
            grown[:, :, :past] = buffer[:, :, :past]
            return grown

        return [grow(buffer) for buffer in cache.keys], [grow(buffer) for buffer in cache.values]

    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one token of one sequence takes (float32 keys and values)."""
        return 2 * 4 * self.config["num_key_value_heads"] * sum(self.head_dims)

    def forward(self, input_ids: np.ndarray, cache: KVCache, new_mask: np.ndarray | None = None) -> tuple[np.ndarray, KVCache]:
        """Run new tokens ``[B, T]`` after ``cache``; returns last-position logits ``[B, V]`` and the new cache.

        ``new_mask [B, T]`` marks left padding with 0 (default: all ones).
        """
        input_ids = np.asarray(input_ids, dtype=np.int64)
        if new_mask is None:
            new_mask = np.ones_like(input_ids)
        mask = np.concatenate([cache.mask, new_mask.astype(np.int64)], axis=1)
        if mask.shape[1] > self.max_context:
            raise ValueError(f"{mask.shape[1]} tokens exceed the model's context of {self.max_context}; "
                             "shorten the prompt or lower max_tokens")
        # Real tokens get positions 0, 1, ... whatever padding precedes them.
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)[:, -input_ids.shape[1]:]

        keys, values = self._reserve(cache, mask.shape[1])
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", input_ids)
        binding.bind_cpu_input("position_ids", np.ascontiguousarray(positions))
        binding.bind_cpu_input("attention_mask", mask)
        binding.bind_output("logits")
        # Binding one buffer as both past and present makes GroupQueryAttention append the new
        # keys and values in place instead of copying the whole cache every step.
        for index in range(len(self.head_dims)):
            for kind, buffers in (("key", keys), ("value", values)):
                buffer = ort.OrtValue.ortvalue_from_numpy(buffers[index])
                binding.bind_ortvalue_input(f"past_{kind}.{index}", buffer)
                binding.bind_ortvalue_output(f"present_{kind}.{index}", buffer)
        self.session.run_with_iobinding(binding)
        logits = binding.get_outputs()[0].numpy()
        return logits, KVCache(keys, values, mask)

    def logits(self, input_ids: np.ndarray) -> np.ndarray:
        """Last-position logits ``[B, V]`` of a full recompute without padding."""
        input_ids = np.asarray(input_ids, dtype=np.int64)
        logits, _ = self.forward(input_ids, self.empty_cache(input_ids.shape[0]))
        return logits
