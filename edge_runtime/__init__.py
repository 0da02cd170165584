"""Edge runtime: run a banded 4-bit artifact with onnxruntime at the pruning rate that fits.

This package imports numpy, onnx, onnxruntime, tokenizers, httpx, psutil and ``uniql.artifact``
only, never torch or transformers, so it installs on a device with ``pip install 'uniql[edge]'``.
"""
