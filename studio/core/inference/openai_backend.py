"""A backend for any server that speaks the OpenAI chat-completions API (llama.cpp's servers, vLLM, hosted APIs).

Replies stream as server-sent events. Cancelling closes the response, which tells the server to stop. Token counts
come from the usage chunk when the server sends one (``stream_options.include_usage``), otherwise from the number
of content events. A JSON Schema in :attr:`GenerationParams.json_schema` is sent as ``response_format``: first in
the OpenAI ``json_schema`` form, and, when the server rejects that form (400/422, or an error naming it), in the
``json_object`` + ``schema`` form that ``llama_cpp.server`` understands (remembered for later requests).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from studio.core.errors import BackendError
from studio.core.inference.base import (
    BackendInfo,
    CancelToken,
    DecodingMode,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    TokenEvent,
)

_FINISH_REASONS = {"stop": StopReason.STOP, "length": StopReason.LENGTH}
_SCHEMA_STYLES = ("json_schema", "json_object")


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class OpenAIBackend:
    """Streams chat completions from ``base_url`` (the address up to and including ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        *,
        context_length: int = 0,
        extra_sampling: bool = False,
    ) -> None:
        """``extra_sampling`` also sends ``top_k`` and ``repeat_penalty`` (llama.cpp servers accept them; the
        OpenAI API does not)."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.extra_sampling = extra_sampling
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self._schema_style = _SCHEMA_STYLES[0]
        self._tokenize_route: str | None = None
        self._info = BackendInfo(
            name=model,
            kind="openai",
            context_length=context_length,
            device="remote",
            extra={"base_url": self.base_url},
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def close(self) -> None:
        self._client.close()

    # -- requests --------------------------------------------------------------------------------------------------

    def _url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    def _request_error(self, exc: httpx.HTTPError) -> BackendError:
        if isinstance(exc, httpx.ConnectError):
            return BackendError(f"cannot connect to the model server at {self.base_url} ({_one_line(str(exc))})")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"the model server at {self.base_url} did not answer within {self.timeout:g} s")
        return BackendError(f"the model server at {self.base_url} failed: {type(exc).__name__}: {_one_line(str(exc))}")

    @staticmethod
    def _status_error(url: str, response: httpx.Response) -> BackendError:
        detail = response.text
        try:
            payload = json.loads(detail)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error", payload.get("detail", payload))
            detail = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        return BackendError(f"{url}: HTTP {response.status_code}: {_one_line(detail) or response.reason_phrase}")

    def list_models(self) -> list[str]:
        """The model ids the server offers (``GET /models``)."""
        url = self._url("models")
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise self._request_error(exc) from None
        if response.status_code >= 400:
            raise self._status_error(url, response)
        data = response.json().get("data", [])
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    def _body(self, messages: Sequence[Message], params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if self.extra_sampling:
            body["top_k"] = params.top_k
            body["repeat_penalty"] = params.repeat_penalty
        if params.json_schema is not None:
            if self._schema_style == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": params.json_schema, "strict": True},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": params.json_schema}
        return body

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamEvent]:
        url = self._url("chat/completions")
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        stop = StopReason.STOP
        usage: dict[str, Any] = {}
        for attempt_style in _SCHEMA_STYLES:
            if cancel is not None and cancel.cancelled:
                stop = StopReason.CANCELLED
                break
            body = self._body(messages, params)
            try:
                with self._client.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        if (
                            params.json_schema is not None
                            and self._schema_style == attempt_style == _SCHEMA_STYLES[0]
                            and (response.status_code in (400, 422) or "json_schema" in response.text)
                        ):
                            self._schema_style = _SCHEMA_STYLES[1]
                            continue
                        raise self._status_error(url, response)
                    for chunk in _events(response, url):
                        if cancel is not None and cancel.cancelled:
                            stop = StopReason.CANCELLED
                            break
                        if isinstance(chunk.get("usage"), dict):
                            usage = chunk["usage"]
                        for choice in chunk.get("choices") or []:
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                if first is None:
                                    first = time.perf_counter() - start
                                pieces.append(text)
                                yield TokenEvent(text, len(pieces) - 1)
                            reason = choice.get("finish_reason")
                            if reason:
                                stop = _FINISH_REASONS.get(reason, StopReason.STOP)
                        if cancel is not None and cancel.cancelled:
                            stop = StopReason.CANCELLED
                            break
            except httpx.HTTPError as exc:
                raise self._request_error(exc) from None
            break
        total = time.perf_counter() - start
        completion_tokens = int(usage.get("completion_tokens") or len(pieces))
        decode_s = total - (first or 0.0)
        yield GenerationResult(
            text="".join(pieces),
            stop_reason=stop,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=completion_tokens,
            cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
            time_to_first_token_s=first,
            decode_tokens_per_s=(completion_tokens / decode_s) if first is not None and decode_s > 0 else None,
            total_s=total,
            mode=DecodingMode.REMOTE,
            extra={"usage_from_server": bool(usage), "response_format": self._schema_style},
        )

    def count_tokens(self, text: str) -> int:
        """Tokens as the server counts them when it offers a tokenize route, else an estimate (4 chars a token)."""
        root = self.base_url.removesuffix("/v1")
        routes = [self._tokenize_route] if self._tokenize_route else ["/extras/tokenize", "/tokenize"]
        for route in routes:
            try:
                response = self._client.post(root + route, json={"input": text, "content": text, "model": self.model})
            except httpx.HTTPError:
                break
            if response.status_code == 200:
                tokens = response.json().get("tokens")
                if isinstance(tokens, list):
                    self._tokenize_route = route
                    return len(tokens)
        return (len(text) + 3) // 4


def _events(response: httpx.Response, url: str) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, up to ``[DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        try:
            payload = json.loads(data)
        except ValueError:
            raise BackendError(f"{url}: the server sent an event that is not JSON: {_one_line(data, 80)}") from None
        if isinstance(payload, dict):
            if "error" in payload:
                error = payload["error"]
                message = error.get("message", error) if isinstance(error, dict) else error
                raise BackendError(f"{url}: the server reported an error: {_one_line(str(message))}")
            yield payload
