"""Time one peer engine (onnxruntime-genai or llama.cpp); prints one JSON line.

Runs inside the peers' environment (.venv-peers), never inside the product's.
Usage: python peer_runner.py genai|llamacpp PATH PROMPT_TOKENS GENERATE_TOKENS THREADS
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np


def genai(path: str, prompt: int, generate: int, threads: int) -> dict:
    import onnxruntime_genai as og

    config = og.Config(path)
    model = og.Model(config)
    vocab = json.load(open(os.path.join(path, "genai_config.json")))["model"]["vocab_size"]
    ids = np.random.default_rng(0).integers(0, vocab, prompt).astype(np.int32)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=prompt + generate + 1, do_sample=False)
    generator = og.Generator(model, params)
    started = time.perf_counter()
    generator.append_tokens(ids)
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(generate):
        generator.generate_next_token()
    decode = time.perf_counter() - started
    weight_bytes = sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path) if name.endswith((".onnx", ".data")))
    return {"prefill_tok_s": prompt / prefill, "decode_tok_s": generate / decode, "weight_bytes": weight_bytes}


def llamacpp(path: str, prompt: int, generate: int, threads: int) -> dict:
    import llama_cpp
    from llama_cpp import Llama

    model = Llama(model_path=path, n_ctx=prompt + generate + 8, n_threads=threads, n_batch=prompt, verbose=False)
    ids = np.random.default_rng(0).integers(0, model.n_vocab(), prompt).tolist()
    started = time.perf_counter()
    model.eval(ids)
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    vocab = model.n_vocab()
    for _ in range(generate):
        # logits_all=False leaves Llama.scores empty, so read the last row from the context
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(model._ctx.ctx, -1), shape=(vocab,))
        model.eval([int(np.argmax(logits))])
    decode = time.perf_counter() - started
    return {"prefill_tok_s": prompt / prefill, "decode_tok_s": generate / decode, "weight_bytes": os.path.getsize(path)}


def main() -> None:
    system, path, prompt, generate, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    result = {"genai": genai, "llamacpp": llamacpp}[system](path, prompt, generate, threads)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
