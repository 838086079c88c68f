"""Run one planstream service: ``python -m agents <service>``.

The sweeper and the decisions sink are plain asyncio processes; the others are Faust workers.
"""

import asyncio
import importlib
import os
import sys

from agents import sweeper
from planstream import crashpoints
from planstream.adapters import logs, tracing
from planstream.adapters.faust.app import create_app
from planstream.adapters.faust.worker import ServiceWorker
from planstream.adapters.kafka import decisions_sink, ensure_topics
from planstream.credentials import check_secrets
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

SERVICES = WORKERS
# The services that are no Faust app: each one's run(settings) returns at SIGTERM.
PLAIN = {"sweeper": sweeper.run, "decisions_sink": decisions_sink.run}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m agents {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    service = argv[0]
    settings = Settings.from_env(os.environ)
    check_secrets(settings, service)  # outside the local stack, no default secret
    # JSON lines unless told otherwise; every line says which service and instance wrote it.
    logs.install(settings, service, "text" if settings.log_format == "text" else "json")
    tracing.configure(settings, service, logs.instance_id(settings))
    # Topics must exist with the catalogue's partition count before Faust subscribes.
    setup_loop = asyncio.new_event_loop()
    try:
        setup_loop.run_until_complete(ensure_topics(settings))
    finally:
        setup_loop.close()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    crashpoints.arm(settings.crashpoints)
    if service in PLAIN:
        PLAIN[service](settings)
        return 0
    app = create_app(settings, service)
    importlib.import_module(f"agents.{service}").build(app)
    ServiceWorker(app, loop).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
