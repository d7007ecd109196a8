"""``studio models add-endpoint`` and friends: model servers registered under a name, usable as any model.

API keys are read from a named environment variable at use time (``--api-key-env``) or kept in the OS keyring
(``set-key``, which reads the key from a prompt or stdin, never from the command line, where shells and process
lists would keep it).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from studio.core.errors import ExitCode, StateError
from studio.core.inference import endpoints
from studio.core.store.store import Store


def register(msub: Any) -> None:
    """Add the endpoint commands to the ``studio models`` group."""
    add = msub.add_parser(
        "add-endpoint",
        help="register an OpenAI-compatible server (llama.cpp server, vLLM, Ollama, hosted API) as a model",
        description="The server is asked for its models first, so a wrong address or key is caught now.",
    )
    add.add_argument("name", help="name to use with --model / --judge")
    add.add_argument("--url", required=True, help="base URL, e.g. http://gpu-box:8000/v1 (/v1 is added to a bare host)")
    add.add_argument("--model", required=True, dest="model_id", help="model id the server serves")
    add.add_argument("--api-key-env", metavar="VAR", help="environment variable that holds the API key")
    add.add_argument("--concurrency", type=int, default=endpoints.DEFAULT_CONCURRENCY, help="requests in flight")
    add.add_argument("--timeout", type=float, default=endpoints.DEFAULT_TIMEOUT_S, help="seconds per request")
    add.add_argument("--no-test", action="store_true", help="register without asking the server now")
    add.set_defaults(func=_add_endpoint)

    test = msub.add_parser("test-endpoint", help="ask a registered endpoint what it serves")
    test.add_argument("name")
    test.add_argument("--json", action="store_true", help="print what the server reports as JSON")
    test.set_defaults(func=_test_endpoint)

    key = msub.add_parser("set-key", help="store an endpoint's API key in the OS keyring (read from a prompt)")
    key.add_argument("name")
    key.add_argument("--stdin", action="store_true", help="read the key from stdin instead of a prompt")
    key.set_defaults(func=_set_key)

    concurrency = msub.add_parser("set-concurrency", help="change how many requests an endpoint gets at once")
    concurrency.add_argument("name")
    concurrency.add_argument("concurrency", type=int)
    concurrency.set_defaults(func=_set_concurrency)

    remove = msub.add_parser("remove-endpoint", help="forget an endpoint (and its key in the keyring)")
    remove.add_argument("name")
    remove.set_defaults(func=_remove_endpoint)


def describe(entry: endpoints.EndpointEntry) -> str:
    """One line for listings; says where the key comes from, never what it is."""
    return (
        f"{entry.name} -> {entry.model_id} at {entry.base_url} (key: {entry.key_source}, {entry.concurrency} at once)"
    )


def _add_endpoint(args: argparse.Namespace) -> int:
    with Store.open() as store:
        entry = endpoints.add_endpoint(
            store,
            args.name,
            args.url,
            args.model_id,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
        )
        if not args.no_test:
            try:
                report = endpoints.ask_server(entry)
            except BaseException:
                endpoints.remove_endpoint(store, entry.name)
                raise
            print(endpoints.server_summary(report))
            if not report.get("model_listed", True):
                print(f"warning: the server does not list {entry.model_id!r}", file=sys.stderr)
    print(f"registered endpoint {describe(entry)}")
    if entry.api_key_env is None:
        print(f"(if it needs an API key: `studio models set-key {entry.name}`)")
    return int(ExitCode.OK)


def _test_endpoint(args: argparse.Namespace) -> int:
    with Store.open() as store:
        entry = endpoints.get_endpoint(store, args.name)
    report = endpoints.ask_server(entry)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else endpoints.server_summary(report))
    return int(ExitCode.OK)


def _read_key(from_stdin: bool, prompt: Callable[[str], str] = getpass.getpass) -> str:
    if from_stdin:
        return sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise StateError("no terminal to ask for the key on; pipe it in with --stdin")
    return prompt("API key (not shown): ").strip()


def _set_key(args: argparse.Namespace) -> int:
    with Store.open() as store:
        endpoints.get_endpoint(store, args.name)
        endpoints.store_api_key(store, args.name, _read_key(args.stdin))
    print(f"stored the API key of {args.name} in the OS keyring")
    return int(ExitCode.OK)


def _set_concurrency(args: argparse.Namespace) -> int:
    with Store.open() as store:
        entry = endpoints.set_concurrency(store, args.name, args.concurrency)
    print(f"updated {describe(entry)}")
    return int(ExitCode.OK)


def _remove_endpoint(args: argparse.Namespace) -> int:
    with Store.open() as store:
        endpoints.remove_endpoint(store, args.name)
    print(f"removed endpoint {args.name}")
    return int(ExitCode.OK)
