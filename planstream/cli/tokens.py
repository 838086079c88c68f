"""`planstream tokens mint`: a JWT the ingress accepts, signed with the local stack's key (or
``PLANSTREAM_AUTH_HS256_SECRET``), for scripts, curl and the console on a development machine.
A deployment that verifies with a JWKS URL gets its tokens from its identity provider instead.
"""

import argparse
import re
from typing import Any

from planstream.domain.principals import SUBJECT_PATTERN
from planstream.settings import Settings

__all__ = ["add_parser", "run_command"]


def add_parser(sub: Any) -> None:
    """The ``tokens`` command and its action."""
    tokens = sub.add_parser("tokens", help="bearer tokens for the ingress (docs/security.md)")
    actions = tokens.add_subparsers(dest="action", required=True)
    mint = actions.add_parser("mint", help="print one JWT signed with the local stack's key")
    mint.add_argument("--subject", required=True, help="the token's `sub`: who owns what it makes")
    mint.add_argument(
        "--role",
        action="append",
        default=[],
        choices=["operator"],
        help="operator: review blocked runs, read every run (repeatable)",
    )
    mint.add_argument("--ttl-s", type=int, default=None, help="lifetime (auth_token_ttl_s)")
    tokens.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    from planstream.adapters.http.tokens import mint

    if not re.fullmatch(SUBJECT_PATTERN, args.subject):
        print(f"planstream tokens mint: --subject must match {SUBJECT_PATTERN}")
        return 2
    if args.ttl_s is not None and not 60 <= args.ttl_s <= 86_400:
        print("planstream tokens mint: --ttl-s must be between 60 and 86400")
        return 2
    print(mint(settings, args.subject, roles=args.role, ttl_s=args.ttl_s))
    return 0
