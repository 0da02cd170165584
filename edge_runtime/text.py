"""Tokenizer, chat template and text generation with stop strings for one artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from tokenizers import Tokenizer

from edge_runtime.engine import Engine
from edge_runtime.generation import GenerationStats, SamplingError, SamplingParams, generate_tokens
from uniql.artifact import Artifact

logger = logging.getLogger(__name__)


class ChatTemplateError(ValueError):
    """The chat template is missing or cannot be rendered."""


@dataclass
class TextChunk:
    """New text of one row and, on its last chunk, why it finished (``stop`` or ``length``)."""

    row: int
    text: str
    finish_reason: str | None = None


class EdgeTokenizer:
    """The artifact's ``tokenizer.json`` plus its chat template and EOS ids."""

    def __init__(self, artifact: Artifact) -> None:
        self.tokenizer = Tokenizer.from_str(artifact.tokenizer_file("tokenizer.json").decode())
        files = artifact.manifest["tokenizer"]["files"]
        self.tokenizer_config = json.loads(artifact.tokenizer_file("tokenizer_config.json")) if "tokenizer_config.json" in files else {}
        self.chat_template = self.tokenizer_config.get("chat_template")
        if "chat_template.jinja" in files:
            self.chat_template = artifact.tokenizer_file("chat_template.jinja").decode()
        self.eos_ids = artifact.eos_token_ids()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """Render chat ``messages`` with the tokenizer's Jinja chat template and a generation prompt."""
        if not self.chat_template:
            raise ChatTemplateError("this model has no chat template; use /v1/completions with a plain prompt")
        try:
            import jinja2
        except ImportError as error:
            raise ChatTemplateError("rendering chat templates needs jinja2; pip install jinja2") from error
        environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            template = environment.from_string(self.chat_template)
            return template.render(messages=messages, add_generation_prompt=True,
                                   bos_token=self.tokenizer_config.get("bos_token", ""),
                                   eos_token=self.tokenizer_config.get("eos_token", ""))
        except jinja2.TemplateError as error:
            raise ChatTemplateError(f"the chat template failed to render: {error}") from error


def generate_text(
    engine: Engine, tokenizer: EdgeTokenizer, prompts: list[str], params: SamplingParams,
    stats: GenerationStats | None = None,
) -> Iterator[TextChunk]:
    """Stream text per row; a row ends at EOS, at a stop string (cut before it) or at max_tokens."""
    encoded = [tokenizer.encode(prompt) for prompt in prompts]
    if any(not ids for ids in encoded):
        raise SamplingError("the prompt is empty; send at least one token of text")
    tokens: list[list[int]] = [[] for _ in prompts]
    sent = [0] * len(prompts)
    done = [False] * len(prompts)
    holdback = max((len(text) for text in params.stop), default=1) - 1

    for step, step_tokens in enumerate(generate_tokens(engine, encoded, params, tokenizer.eos_ids, stats)):
        last_step = step == params.max_tokens - 1
        for row, token in enumerate(step_tokens):
            if done[row]:
                continue
            eos = int(token) in tokenizer.eos_ids
            if not eos:
                tokens[row].append(int(token))
            text = tokenizer.decode(tokens[row])
            cut = min((text.find(stop) for stop in params.stop if stop in text), default=-1)
            if cut >= 0 or eos or last_step:
                done[row] = True
                end = cut if cut >= 0 else len(text)
                reason = "stop" if cut >= 0 or eos else "length"
                yield TextChunk(row, text[sent[row]:end], reason)
            elif not text.endswith("\ufffd"):
                # Hold back text that could be the start of a stop string.
                safe = max(sent[row], len(text) - holdback)
                if safe > sent[row]:
                    yield TextChunk(row, text[sent[row]:safe])
                    sent[row] = safe
        if all(done):
            break
    for row in range(len(prompts)):
        if not done[row]:
            yield TextChunk(row, tokenizer.decode(tokens[row])[sent[row]:], "length")
