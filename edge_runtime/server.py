"""OpenAI-compatible HTTP API of the edge daemon (starlette), plus /healthz, /status and /metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from edge_runtime.daemon import EdgeDaemon
from edge_runtime.generation import GenerationStats, SamplingError, SamplingParams
from edge_runtime.metrics import render_metrics
from edge_runtime.text import ChatTemplateError, generate_text

logger = logging.getLogger(__name__)


class RequestError(Exception):
    """A client error that maps to an HTTP status."""

    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_response(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": code, "code": status}}, status_code=status)


def sampling_from(body: dict[str, Any]) -> SamplingParams:
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    try:
        return SamplingParams(max_tokens=body.get("max_tokens", 64), temperature=float(body.get("temperature", 0.0)),
                              top_p=float(body.get("top_p", 1.0)), seed=body.get("seed"), stop=stop)
    except (TypeError, ValueError) as error:
        raise RequestError(400, str(error)) from error


def create_app(daemon: EdgeDaemon) -> Starlette:
    """Build the ASGI app serving ``daemon``."""

    async def read_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except json.JSONDecodeError as error:
            raise RequestError(400, f"request body is not valid JSON: {error}") from error
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        model = body.get("model", daemon.model_name)
        if model != daemon.model_name:
            raise RequestError(404, f"model {model!r} not found; this daemon serves {daemon.model_name!r}",
                               "model_not_found")
        return body

    def run_generation(prompts: list[str], params: SamplingParams) -> tuple[list[str], list[str], GenerationStats]:
        stats = GenerationStats()
        texts = [""] * len(prompts)
        reasons = ["length"] * len(prompts)
        with daemon.manager.lease() as engine:
            for chunk in generate_text(engine, daemon.tokenizer, prompts, params, stats):
                texts[chunk.row] += chunk.text
                if chunk.finish_reason:
                    reasons[chunk.row] = chunk.finish_reason
        daemon.counters.add(stats)
        return texts, reasons, stats

    def stream_generation(prompt: str, params: SamplingParams, make_event) -> Iterator[str]:
        stats = GenerationStats()
        try:
            with daemon.manager.lease() as engine:
                for chunk in generate_text(engine, daemon.tokenizer, [prompt], params, stats):
                    yield f"data: {json.dumps(make_event(chunk.text, chunk.finish_reason))}\n\n"
        except (SamplingError, TimeoutError) as error:
            daemon.counters.failed_requests += 1
            yield f"data: {json.dumps({'error': {'message': str(error), 'code': 400}})}\n\n"
        daemon.counters.add(stats)
        yield "data: [DONE]\n\n"

    def usage(stats: GenerationStats) -> dict[str, int]:
        return {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                "total_tokens": stats.prompt_tokens + stats.completion_tokens}

    async def create_completion(request: Request) -> Response:
        body = await read_body(request)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list):
            prompts = prompt
        else:
            prompts = None
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise RequestError(400, "prompt must be a non-empty string or list of strings")
        params = sampling_from(body)
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if body.get("stream"):
            if len(prompts) != 1:
                raise RequestError(400, "streaming supports one prompt per request")

            def event(text: str, reason: str | None) -> dict:
                return {"id": ident, "object": "text_completion", "created": created, "model": daemon.model_name,
                        "choices": [{"index": 0, "text": text, "finish_reason": reason}]}

            return StreamingResponse(stream_generation(prompts[0], params, event), media_type="text/event-stream")
        texts, reasons, stats = await run_in_threadpool(run_generation, prompts, params)
        choices = [{"index": i, "text": t, "finish_reason": r} for i, (t, r) in enumerate(zip(texts, reasons))]
        return JSONResponse({"id": ident, "object": "text_completion", "created": created,
                             "model": daemon.model_name, "choices": choices, "usage": usage(stats)})

    async def create_chat_completion(request: Request) -> Response:
        body = await read_body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages):
            raise RequestError(400, "messages must be a non-empty list of {role, content} objects with string values")
        try:
            prompt = daemon.tokenizer.render_chat(messages)
        except ChatTemplateError as error:
            raise RequestError(400, str(error)) from error
        params = sampling_from(body)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.get("stream"):
            def event(text: str, reason: str | None) -> dict:
                return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": daemon.model_name,
                        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": reason}]}

            return StreamingResponse(stream_generation(prompt, params, event), media_type="text/event-stream")
        texts, reasons, stats = await run_in_threadpool(run_generation, [prompt], params)
        choice = {"index": 0, "message": {"role": "assistant", "content": texts[0]}, "finish_reason": reasons[0]}
        return JSONResponse({"id": ident, "object": "chat.completion", "created": created,
                             "model": daemon.model_name, "choices": [choice], "usage": usage(stats)})

    async def list_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": daemon.model_name, "object": "model", "owned_by": "uniql", "rate": daemon.manager.rate}]})

    async def read_health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "rate": daemon.manager.rate})

    async def read_status(request: Request) -> Response:
        return JSONResponse(daemon.status())

    async def read_metrics(request: Request) -> Response:
        return PlainTextResponse(render_metrics(daemon.status()), media_type="text/plain; version=0.0.4")

    async def handle_request_error(request: Request, error: RequestError) -> Response:
        return error_response(error.status, str(error), error.code)

    async def handle_value_error(request: Request, error: Exception) -> Response:
        daemon.counters.failed_requests += 1
        status = 503 if isinstance(error, TimeoutError) else 400
        return error_response(status, str(error), "invalid_request_error" if status == 400 else "unavailable")

    routes = [
        Route("/v1/completions", create_completion, methods=["POST"]),
        Route("/v1/chat/completions", create_chat_completion, methods=["POST"]),
        Route("/v1/models", list_models), Route("/healthz", read_health),
        Route("/status", read_status), Route("/metrics", read_metrics),
    ]
    handlers = {RequestError: handle_request_error, SamplingError: handle_value_error, TimeoutError: handle_value_error}
    return Starlette(routes=routes, exception_handlers=handlers)
