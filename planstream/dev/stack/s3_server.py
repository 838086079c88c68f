"""The local S3 server: moto's S3 application served by uvicorn, which keeps connections open.

``python -m moto.server`` serves moto with werkzeug's development server, which answers every
request with ``Connection: close`` (``werkzeug.serving``: its handler cannot drain an unread
request body before reading the next request line), so every S3 request a service made paid
for a new TCP connection — about 5 % of each worker's CPU in ``sock_connect`` and happy
eyeballs. uvicorn serves the same WSGI application with HTTP/1.1 keep-alive, as S3 does; its
idle timeout is longer than the S3 client's (aiobotocore closes an idle connection after 12 s),
so the client always closes an idle connection first and never sends on one the server closed.

``python -m planstream.dev.stack.s3_server --port 15000``.
"""

import argparse
import os
from collections.abc import Sequence
from typing import Final

import uvicorn
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

__all__ = ["main"]

KEEP_ALIVE_S: Final = 75
"""Longer than aiobotocore's 12 s keep-alive: the client closes an idle connection first."""


def main(argv: Sequence[str] | None = None) -> None:
    """Serve moto's S3 on ``--host``:``--port`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="planstream.dev.stack.s3_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server sets it
    uvicorn.run(
        DomainDispatcherApplication(create_backend_app),
        host=args.host,
        port=args.port,
        interface="wsgi",
        timeout_keep_alive=KEEP_ALIVE_S,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
