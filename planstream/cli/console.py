"""`planstream console`: open the operator console (docs/console.md) signed in with a fresh local
operator token.

It mints an operator token with the local stack's key (``console_token_ttl_s``; the subject is
``--operator`` or the OS user), prints ``<ingress>/console/sign-in#token=...`` and opens it in
the browser unless ``--no-open``. The token travels in the URL's fragment, which the browser
never sends: the sign-in page's script posts it and clears it. When no ingress answers at the
configured address, this command serves one itself until Ctrl-C (after ``make demo``, whose
services stop when it ends); reviews then wait for the workers (``planstream up``).
"""

import argparse
import asyncio
import getpass
import http.client
import re
import sys
import webbrowser
from typing import Any, Final
from urllib.parse import urlsplit

from planstream.domain.principals import OPERATOR, SUBJECT_PATTERN
from planstream.settings import Settings

__all__ = ["add_parser", "run_command"]

_BASE: Final = re.compile(r"^https?://[A-Za-z0-9.\[\]:-]+$")
_PROBE_S: Final = 2.0  # how long the check for a running ingress waits


def add_parser(sub: Any) -> None:
    """The ``console`` command."""
    console = sub.add_parser(
        "console", help="open the operator console with a fresh local operator token"
    )
    console.add_argument(
        "--operator", default=None, help="the token's subject (default: the OS user)"
    )
    console.add_argument(
        "--ingress",
        default=None,
        help="the ingress's base URL (default http://<ingress_host>:<ingress_port>)",
    )
    console.add_argument("--no-open", action="store_true", help="print the URL, open nothing")
    console.set_defaults(handler=run_command)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "operator"


def _default_base(settings: Settings) -> str:
    host = settings.ingress_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a bind-all address is reached by loopback)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.ingress_port}"


def _answers(base: str) -> bool:
    """Whether an ingress answers ``GET /healthz`` at ``base``."""
    parts = urlsplit(base)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        connection = kind(parts.hostname or "", parts.port, timeout=_PROBE_S)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False


async def _serve(settings: Settings, url: str, open_browser: bool) -> None:
    """The ingress (console included) in this process until cancelled; the browser is opened
    once it listens."""
    from aiohttp import web

    from planstream.adapters.http.ingress import create_app

    runner = web.AppRunner(
        create_app(settings), access_log=None, keepalive_timeout=settings.ingress_read_timeout_s
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.ingress_host, settings.ingress_port).start()
        if open_browser:
            webbrowser.open(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Mint the token, print and open the sign-in URL (serving the ingress when none runs)."""
    from planstream.adapters.http.tokens import mint
    from planstream.credentials import check_secrets

    subject = args.operator or _os_user()
    if not re.fullmatch(SUBJECT_PATTERN, subject):
        print(f"planstream console: --operator must match {SUBJECT_PATTERN}", file=sys.stderr)
        return 2
    base = (args.ingress or _default_base(settings)).rstrip("/")
    if not _BASE.fullmatch(base):
        print("planstream console: --ingress is scheme://host[:port]", file=sys.stderr)
        return 2
    token = mint(settings, subject, roles=(OPERATOR,), ttl_s=settings.console_token_ttl_s)
    url = f"{base}/console/sign-in#token={token}"
    print(url, flush=True)
    if _answers(base):
        if not args.no_open:
            webbrowser.open(url)
        return 0
    if args.ingress is not None:
        print(f"planstream console: no ingress answers at {base}", file=sys.stderr)
        return 1
    check_secrets(settings, "ingress")
    print(
        f"no ingress answered at {base}: serving it here until Ctrl-C (reviews take effect "
        "once the workers run: planstream up)",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(_serve(settings, url, not args.no_open))
    return 0
