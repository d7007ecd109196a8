"""A backend for any server that speaks the OpenAI chat-completions API (llama.cpp's servers, vLLM, hosted APIs).

Replies stream as server-sent events. Cancelling closes the response, which tells the server to stop. Token counts
come from the usage chunk when the server sends one (``stream_options.include_usage``), otherwise from the number
of content events. A JSON Schema in :attr:`GenerationParams.json_schema` is sent as ``response_format``: first in
the OpenAI ``json_schema`` form, and, when the server rejects that form (400/422, or an error naming it), in the
``json_object`` + ``schema`` form that ``llama_cpp.server`` understands (remembered for later requests).

Servers are shared and busy: a request that meets 429, a 5xx status or a dropped connection before any text arrived
is retried with exponential backoff and full jitter (a ``Retry-After`` header wins), waking early on cancel. One
backend may serve :attr:`OpenAIBackend.max_concurrency` requests at once from different threads (the HTTP client
is thread-safe and its pool is sized for that).

A llama.cpp server reads text that spells one of its control tokens (``<|im_start|>``) as that token, whatever
the message role. ``guard`` keeps such text plain. On llama.cpp's own server (``llama-server``) the prompt is
rendered here with the model's template and sent as token ids to its completion route
(:meth:`OpenAIBackend.use_server_prompt`, :mod:`server_prompt`), so message text stays text token for token.
Servers without such a route (``llama_cpp.server``) get the text defused instead: it is found with the server's
own tokenizer and a word joiner (U+2060) is put after its first character, so it reaches the model as plain
characters; each defused marker is counted in ``GenerationResult.extra["defused_markers"]``.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

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
from studio.core.inference.timing import StreamClock

if TYPE_CHECKING:
    from studio.core.inference.server_prompt import ServerPrompt

_FINISH_REASONS = {"stop": StopReason.STOP, "length": StopReason.LENGTH}
_SCHEMA_STYLES = ("json_schema", "json_object")
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Text shaped like a chat-template control token: <|im_start|>, <s>, </s>, [INST], <start_of_turn>, <<SYS>>.
MARKER_PATTERN = re.compile(r"<\|[^<>|\s]{1,40}\|>|</?[A-Za-z][\w.-]{0,30}>|\[/?[A-Z][A-Z_]{1,15}\]|<<[A-Z]{2,10}>>")
WORD_JOINER = "\u2060"


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is tried again."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before try ``attempt + 1``: the server's Retry-After, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_s * 4)
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))


#: One streamed event as (text, stop reason when it ends the reply, usage in the OpenAI shape when it carries it).
Event = tuple[str, StopReason | None, dict[str, Any] | None]


@dataclass(frozen=True)
class _Route:
    """Where one reply is asked for and how its events read: the chat route, or a llama.cpp server's completion
    route with token ids. ``body`` is built per attempt (the response-format style may change between them)."""

    url: str
    body: Callable[[], dict[str, Any]]
    read: Callable[[dict[str, Any]], Event]
    #: Whether a refused ``response_format`` is worth another try in the other form.
    schema_styles: bool
    headers: dict[str, str] | None = None


class _Retry(Exception):
    """A failure worth another try (carries the error to raise if none is left)."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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
        concurrency: int = 1,
        retry: RetryPolicy = RetryPolicy(),
        name: str | None = None,
        guard: bool = False,
    ) -> None:
        """``extra_sampling`` also sends ``top_k`` and ``repeat_penalty`` (llama.cpp servers accept them; the
        OpenAI API does not). ``timeout`` bounds each request from start to last byte."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.extra_sampling = extra_sampling
        self.max_concurrency = max(1, concurrency)
        self.retry = retry
        self.guard = guard
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        pool = httpx.Limits(max_connections=self.max_concurrency + 4, max_keepalive_connections=self.max_concurrency)
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), limits=pool
        )
        self._schema_style = _SCHEMA_STYLES[0]
        self._tokenize_route: str | None = None
        self._control_texts: dict[str, bool] = {}
        self._server_prompt: ServerPrompt | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._info = BackendInfo(
            name=name or model,
            kind="openai",
            context_length=context_length,
            device="remote",
            extra={"base_url": self.base_url, "model_id": model},
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def describe(self, server: dict[str, Any]) -> None:
        """Add what the server reports about itself to :attr:`info` (for provenance)."""
        context = server.get("context_length")
        self._info = BackendInfo(
            name=self._info.name,
            kind="openai",
            context_length=int(context) if isinstance(context, int) else self._info.context_length,
            device="remote",
            extra={**self._info.extra, "server": server},
        )

    def close(self) -> None:
        self._client.close()

    # -- requests --------------------------------------------------------------------------------------------------

    def _url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    @property
    def root(self) -> str:
        """The server's address without the API version (where llama.cpp and vLLM put their own routes)."""
        return self.base_url.removesuffix("/v1")

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

    def get_json(self, url: str) -> Any:
        """GET a JSON document (with retries); raises :class:`BackendError`."""
        return self._request_json("GET", url)

    def _request_json(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request with retries on 429, 5xx and dropped connections; raises :class:`BackendError`."""

        def attempt() -> Any:
            try:
                response = self._client.request(method, url, json=body)
            except httpx.HTTPError as exc:
                raise _Retry(self._request_error(exc)) from None
            if response.status_code in _RETRY_STATUS or response.status_code >= 500:
                raise _Retry(self._status_error(url, response), _retry_after(response))
            if response.status_code >= 400:
                raise self._status_error(url, response)
            try:
                return response.json()
            except ValueError:
                raise BackendError(f"{url}: the server's answer is not JSON") from None

        return self._with_retries(attempt, None)

    def list_models(self) -> list[str]:
        """The model ids the server offers (``GET /models``)."""
        payload = self.get_json(self._url("models"))
        data = payload.get("data", []) if isinstance(payload, dict) else []
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    def _with_retries(self, attempt: Any, cancel: CancelToken | None) -> Any:
        """Call ``attempt`` until it succeeds, raises a final error, or the tries run out."""
        for number in range(self.retry.attempts):
            try:
                return attempt()
            except _Retry as retry:
                if number + 1 >= self.retry.attempts:
                    raise retry.error from None
                with self._lock:
                    pause = self.retry.delay(number, retry.retry_after, self._rng)
                if cancel is not None:
                    if cancel.wait(pause):
                        return None
                else:
                    time.sleep(pause)
        raise AssertionError("unreachable")

    def server_report(self) -> dict[str, Any]:
        """What the server says about itself: its software (llama.cpp server, llama-cpp-python, vLLM, Ollama or
        unknown) and version, the models it offers and the entry of ours. Raises :class:`BackendError` when the
        server does not answer ``GET /models``."""
        payload = self.get_json(self._url("models"))
        data = payload.get("data", []) if isinstance(payload, dict) else []
        entries = [item for item in data if isinstance(item, dict) and "id" in item]
        ours = next((item for item in entries if item["id"] == self.model), None)
        report: dict[str, Any] = {
            "models": [str(item["id"]) for item in entries][:50],
            "model": {k: v for k, v in (ours or {}).items() if isinstance(v, str | int | float | bool)},
        }
        report.update(self._software())
        return report

    def _peek(self, route: str) -> Any:
        """A JSON document at ``root + route`` when the server has one, else None (asked once, without retries)."""
        try:
            response = self._client.get(self.root + route, timeout=min(self.timeout, 5.0))
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def _software(self) -> dict[str, Any]:
        props = self._peek("/props")
        if isinstance(props, dict) and ("build_info" in props or "chat_template" in props):
            settings = props.get("default_generation_settings") or {}
            return {
                "software": "llama.cpp server",
                "version": str(props.get("build_info", "")),
                "model_path": str(props.get("model_path", "")),
                "context_length": settings.get("n_ctx") if isinstance(settings, dict) else None,
            }
        api = self._peek("/openapi.json")
        title = str(((api or {}).get("info") or {}).get("title", "")) if isinstance(api, dict) else ""
        if "llama.cpp" in title or "llama_cpp" in title:
            return {"software": "llama-cpp-python", "version": str(api["info"].get("version", ""))}
        for route, software in (("/version", "vllm"), ("/api/version", "ollama")):
            found = self._peek(route)
            if isinstance(found, dict) and "version" in found:
                return {"software": software, "version": str(found["version"])}
        return {"software": "unknown"}

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

    def use_server_prompt(self) -> bool:
        """Render prompts here and send token ids to the ``/completion`` route of a llama.cpp server. False, and
        nothing changes, when the server reports no chat template in ``GET /props``."""
        from studio.core.inference.server_prompt import ServerPrompt

        props = self._peek("/props")
        if isinstance(props, dict):
            self._server_prompt = ServerPrompt.from_props(props, self._post_tokenize)
        return self._server_prompt is not None

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamEvent]:
        state = _StreamState()
        route = self._route(messages, params, state)
        clock = StreamClock()
        # Tokens stream out as they arrive, so a request is tried again only while none has arrived.
        yield from self._stream_with_retries(route, cancel, state, clock)
        yield self._result(state, clock)

    def _route(self, messages: Sequence[Message], params: GenerationParams, state: _StreamState) -> _Route:
        """The completion route with client-rendered token ids where the server takes them, else the chat route
        (with control-token text defused when ``guard`` is on)."""
        if self._server_prompt is not None:
            from studio.core.inference.server_prompt import completion_body, completion_event

            tokens = self._server_prompt.render(messages)
            state.prompt_route = "token ids"
            body = completion_body(tokens, params, self.extra_sampling)
            # llama-server leaves a connection that streamed /completion unfit for the next request (which then fails
            # at once and waits out a retry), so every completion gets a connection of its own.
            close = {"Connection": "close"}
            return _Route(self.root + "/completion", lambda: body, completion_event, schema_styles=False, headers=close)
        if self.guard:
            messages, state.defused = self.defuse(messages)
        chat = list(messages)
        return _Route(self._url("chat/completions"), lambda: self._body(chat, params), _chat_event, schema_styles=True)

    def _stream_with_retries(
        self, route: _Route, cancel: CancelToken | None, state: _StreamState, clock: StreamClock
    ) -> Iterator[TokenEvent]:
        attempt_number = 0
        while True:
            if cancel is not None and cancel.cancelled:
                state.stop = StopReason.CANCELLED
                return
            try:
                yield from self._request(route, cancel, state, clock)
                return
            except _Retry as retry:
                attempt_number += 1
                if state.pieces or attempt_number >= self.retry.attempts:
                    raise retry.error from None
                state.retries += 1
                if self._pause(attempt_number - 1, retry, cancel):
                    state.stop = StopReason.CANCELLED
                    return

    def _pause(self, attempt: int, retry: _Retry, cancel: CancelToken | None) -> bool:
        """Wait before the next try; True when cancelled meanwhile."""
        with self._lock:
            pause = self.retry.delay(attempt, retry.retry_after, self._rng)
        if cancel is not None:
            return cancel.wait(pause)
        time.sleep(pause)
        return False

    def _request(
        self, route: _Route, cancel: CancelToken | None, state: _StreamState, clock: StreamClock
    ) -> Iterator[TokenEvent]:
        """One POST; raises :class:`_Retry` for failures worth another try, :class:`BackendError` for others."""
        for style in _SCHEMA_STYLES:
            deadline = time.monotonic() + self.timeout
            try:
                with self._client.stream("POST", route.url, json=route.body(), headers=route.headers) as response:
                    if response.status_code >= 400:
                        response.read()
                        if route.schema_styles and self._switch_schema_style(route.body(), style, response):
                            continue
                        error = self._status_error(route.url, response)
                        if response.status_code in _RETRY_STATUS or response.status_code >= 500:
                            raise _Retry(error, _retry_after(response))
                        raise error
                    yield from self._read_events(response, route, cancel, state, clock, deadline)
            except httpx.HTTPError as exc:
                raise _Retry(self._request_error(exc)) from None
            return

    def _switch_schema_style(self, body: dict[str, Any], style: str, response: httpx.Response) -> bool:
        """True when the server refused the OpenAI json_schema form and the other form should be tried."""
        if (
            "response_format" in body
            and self._schema_style == style == _SCHEMA_STYLES[0]
            and (response.status_code in (400, 422) or "json_schema" in response.text)
        ):
            self._schema_style = _SCHEMA_STYLES[1]
            return True
        return False

    def _read_events(
        self,
        response: httpx.Response,
        route: _Route,
        cancel: CancelToken | None,
        state: _StreamState,
        clock: StreamClock,
        deadline: float,
    ) -> Iterator[TokenEvent]:
        for chunk in _events(response, route.url):
            if cancel is not None and cancel.cancelled:
                state.stop = StopReason.CANCELLED
                return
            if time.monotonic() > deadline:
                raise BackendError(f"the model server at {self.base_url} took longer than {self.timeout:g} s")
            text, reason, usage = route.read(chunk)
            if usage is not None:
                state.usage = usage
            if text:
                clock.token()
                state.pieces.append(text)
                yield TokenEvent(text, len(state.pieces) - 1)
            if reason is not None:
                state.stop = reason
                state.finished = True
        if cancel is not None and cancel.cancelled:
            state.stop = StopReason.CANCELLED
        elif not state.finished:
            raise _Retry(BackendError(f"the model server at {self.base_url} closed the reply before its end"))

    def _result(self, state: _StreamState, clock: StreamClock) -> GenerationResult:
        usage = state.usage
        completion_tokens = int(usage.get("completion_tokens") or len(state.pieces))
        extra: dict[str, Any] = {"usage_from_server": bool(usage), "response_format": self._schema_style}
        if state.retries:
            extra["retries"] = state.retries
        if state.defused:
            extra["defused_markers"] = state.defused
        if state.prompt_route:
            extra["prompt_route"] = state.prompt_route
        return GenerationResult(
            text="".join(state.pieces),
            stop_reason=state.stop,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=completion_tokens,
            cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
            time_to_first_token_s=clock.ttft,
            decode_tokens_per_s=clock.rate(completion_tokens),
            total_s=clock.elapsed(),
            mode=DecodingMode.REMOTE,
            extra=extra,
        )

    # -- control-token text ----------------------------------------------------------------------------------------

    def defuse(self, messages: Sequence[Message]) -> tuple[list[Message], int]:
        """The messages with every piece of text the server would read as a control token broken by a word joiner,
        and how many were broken."""
        count = 0
        out: list[Message] = []
        for message in messages:
            content = message.content
            for marker in sorted(set(MARKER_PATTERN.findall(content)), key=len, reverse=True):
                if self._is_control_text(marker):
                    count += content.count(marker)
                    content = content.replace(marker, marker[0] + WORD_JOINER + marker[1:])
            out.append(Message(message.role, content))
        return out, count

    def _is_control_text(self, marker: str) -> bool:
        """Whether the server's tokenizer reads ``marker`` as one token that prints as nothing (a control token).
        Asked once per marker; without a tokenizer route every marker-like text counts as control text."""
        with self._lock:
            known = self._control_texts.get(marker)
        if known is not None:
            return known
        verdict = True
        try:
            tokens = self._tokenize(marker)
            if tokens is not None:
                verdict = len(tokens) == 1 and self._detokenize(tokens) == ""
        except (httpx.HTTPError, ValueError):
            verdict = True
        with self._lock:
            self._control_texts[marker] = verdict
        return verdict

    def _post_tokenize(self, body: dict[str, Any]) -> list[Any]:
        """The ``tokens`` a llama.cpp server's ``/tokenize`` returns for ``body`` (retried like any request)."""
        url = self.root + "/tokenize"
        answer = self._request_json("POST", url, body)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise BackendError(f"{url}: the server's answer has no token list")
        return tokens

    def _tokenize(self, text: str) -> list[int] | None:
        routes = [self._tokenize_route] if self._tokenize_route else ["/extras/tokenize", "/tokenize"]
        for route in routes:
            response = self._client.post(self.root + route, json={"input": text, "content": text, "model": self.model})
            if response.status_code == 200:
                tokens = response.json().get("tokens")
                if isinstance(tokens, list):
                    self._tokenize_route = route
                    return [int(t) for t in tokens]
        return None

    def _detokenize(self, tokens: list[int]) -> str | None:
        route = "/extras/detokenize" if self._tokenize_route == "/extras/tokenize" else "/detokenize"
        response = self._client.post(self.root + route, json={"tokens": tokens, "model": self.model})
        if response.status_code != 200:
            return None
        payload = response.json()
        text = payload.get("text", payload.get("content"))
        return text if isinstance(text, str) else None

    def count_tokens(self, text: str) -> int:
        """Tokens as the server counts them when it offers a tokenize route, else an estimate (4 chars a token)."""
        try:
            tokens = self._tokenize(text)
        except (httpx.HTTPError, ValueError):
            tokens = None
        return len(tokens) if tokens is not None else (len(text) + 3) // 4


@dataclass
class _StreamState:
    """What one streamed request has gathered so far (kept across retries)."""

    stop: StopReason = StopReason.STOP
    retries: int = 0
    defused: int = 0
    finished: bool = False
    prompt_route: str = ""

    def __post_init__(self) -> None:
        self.pieces: list[str] = []
        self.usage: dict[str, Any] = {}


def _chat_event(chunk: dict[str, Any]) -> Event:
    """One chat-completions event: the text of its choices, their finish reason, the usage when it is there."""
    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
    texts: list[str] = []
    reason: StopReason | None = None
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content")
        if text:
            texts.append(text)
        finish = choice.get("finish_reason")
        if finish:
            reason = _FINISH_REASONS.get(finish, StopReason.STOP)
    return "".join(texts), reason, usage


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
