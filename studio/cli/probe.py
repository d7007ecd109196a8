"""``studio probe``: send one prompt under a safety config to a local model and stream the reply.

The reply goes to stdout as it is generated; its timings (first word after, tokens, whether the config came from the
prefix cache, then decode speed and token counts) go to stderr, so the reply can be piped on its own. ``--json``
prints one JSON object with the reply and its provenance instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import ExitCode, InputError
from studio.core.inference.base import GenerationParams, GenerationResult, TokenEvent, chat
from studio.core.inference.opening import LoadOptions, gpu_setting, open_backend
from studio.core.store import Store
from studio.core.wording import reply_details, reply_summary
from studio.core.yamlio import read_text


def register(sub: Any) -> None:
    probe = sub.add_parser(
        "probe",
        help="stream a model's reply to one prompt under a safety config",
        description="Send PROMPT (or '-' for stdin) as the user turn, with the config text as the system turn.",
    )
    source = probe.add_mutually_exclusive_group()
    source.add_argument(
        "--config", metavar="C", help="config file or stored config id whose text becomes the system turn"
    )
    source.add_argument("--config-text", metavar="TEXT", help="config text given directly")
    probe.add_argument("--model", metavar="NAME_OR_PATH", help="registered model name or GGUF path (default model)")
    probe.add_argument("--temperature", type=float, default=0.0, help="0 decodes greedily (default)")
    probe.add_argument("--top-p", type=float, default=0.95)
    probe.add_argument("--top-k", type=int, default=40)
    probe.add_argument("--max-tokens", type=int, default=256)
    probe.add_argument("--seed", type=int, default=0)
    probe.add_argument("--gpu", type=gpu_setting, help="auto, cpu or a number of layers to offload")
    probe.add_argument("--max-context", type=int, help="cap on the context size in tokens")
    probe.add_argument("--threads", type=int, help="CPU threads for llama.cpp (default: its own choice)")
    probe.add_argument("--schema", metavar="FILE", help="JSON Schema the reply must satisfy (constrained decoding)")
    probe.add_argument("--no-cache", action="store_true", help="do not read or write saved config-prefix states")
    probe.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    probe.add_argument("prompt", help="the user prompt, or '-' to read it from stdin")
    probe.set_defaults(func=_probe)


def _config_text(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(config text, config id) from --config or --config-text."""
    if args.config_text is not None:
        if not args.config_text.strip():
            raise InputError("--config-text", "config text is blank")
        return args.config_text, None
    if args.config is None:
        return None, None
    from studio.core.refs import load_config_ref

    with Store.open() as store:
        config = load_config_ref(args.config, store.configs)
    return config.text, config.id


def _schema(path_text: str | None) -> dict[str, Any] | None:
    if path_text is None:
        return None
    path = Path(path_text)
    text = read_text(path)  # a regular UTF-8 file of sane size, else a one-line InputError
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError(path, "the schema is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    if not isinstance(data, dict):
        raise InputError(path, "a JSON Schema must be an object")
    return data


def _probe(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise InputError("prompt", "the prompt is empty")
    if args.max_tokens < 1:
        raise InputError("--max-tokens", "must be at least 1")
    system, config_id = _config_text(args)
    params = GenerationParams(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_tokens=args.max_tokens,
        seed=args.seed,
        json_schema=_schema(args.schema),
    )
    options = LoadOptions(
        gpu=args.gpu,
        max_context=args.max_context,
        threads=args.threads,
        use_cache=not args.no_cache,
        parallel_sequences=1,
    )
    with Store.open() as store:
        backend = open_backend(args.model, options, store=store)
    result: GenerationResult | None = None
    try:
        for event in backend.stream(chat(system, prompt), params):
            if isinstance(event, TokenEvent):
                if not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
            else:
                result = event
    finally:
        backend.close()
    assert result is not None
    if args.json:
        print(json.dumps(_record(result, backend.info.name, backend.info.model_sha256, config_id), ensure_ascii=False))
    else:
        sys.stdout.write("\n")
        print(_timings(result), file=sys.stderr)
    return int(ExitCode.OK)


def _timings(result: GenerationResult) -> str:
    """The reply's timings as the GUI words them, then the engineer's figures on a second line."""
    return f"{reply_summary(result)}\n{reply_details(result)}"


def _record(result: GenerationResult, model: str, sha256: str | None, config_id: str | None) -> dict[str, Any]:
    return {
        "text": result.text,
        "stop_reason": str(result.stop_reason),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cached_tokens": result.cached_tokens,
        "time_to_first_token_s": result.time_to_first_token_s,
        "decode_tokens_per_s": result.decode_tokens_per_s,
        "total_s": result.total_s,
        "model": model,
        "model_sha256": sha256,
        "config_id": config_id,
    }
