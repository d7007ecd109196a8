"""``studio keys``: identities (signing key pairs with a name) and the colleagues whose signatures are trusted."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.cli.approval import acting_identity, add_actor_argument
from studio.cli.parser import command_group
from studio.core.errors import ExitCode
from studio.core.fileio import write_output
from studio.core.identity import create_identity, local_identities, trust_card, trusted_keys


def register(sub: Any) -> None:
    keys = command_group(sub, "keys", "identities (signing key pairs with a name) and trusted colleagues")
    create = keys.add_parser("create", help="make a new identity on this machine")
    create.add_argument("name")
    create.set_defaults(func=_keys_create)
    klist = keys.add_parser("list", help="list the identities here and the trusted colleagues")
    klist.set_defaults(func=_keys_list)
    public = keys.add_parser(
        "public", aliases=["card"], help="print (or write) an identity's public card for colleagues to trust"
    )
    public.add_argument("-o", "--output", type=Path)
    add_actor_argument(public)
    public.set_defaults(func=_keys_public)
    trust = keys.add_parser("trust", help="trust the signatures of a colleague: give the card they sent you")
    trust.add_argument("file", type=Path)
    trust.set_defaults(func=_keys_trust)


def _keys_create(args: argparse.Namespace) -> int:
    identity = create_identity(args.name)
    print(f"created identity {identity.label()}; send `studio keys card --as {identity.name}` to colleagues")
    return int(ExitCode.OK)


def _keys_list(args: argparse.Namespace) -> int:
    local = {k.key_id for k in local_identities()}
    for known in trusted_keys().values():
        where = "identity on this machine" if known.key_id in local else "trusted colleague"
        print(f"{known.key_id}  {known.name:<20} {where}")
    return int(ExitCode.OK)


def _keys_public(args: argparse.Namespace) -> int:
    card = json.dumps(acting_identity(args).card(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(card)
    else:
        write_output(args.output, card, what="card")
    return int(ExitCode.OK)


def _keys_trust(args: argparse.Namespace) -> int:
    known = trust_card(args.file)
    print(f"trusting {known.label()}")
    return int(ExitCode.OK)
