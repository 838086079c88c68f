"""Run one planstream service: ``python -m agents <service> [--replay]``.

The sweeper and the decisions sink are plain asyncio processes; the others are Faust workers.
``--replay`` runs the service in replay mode (docs/replay.md): the same agents on the replay
topics, in their own consumer groups, writing only inside the replay of each event. The
services a replay's attempts go through have one: the Info Worker, the Comparison Worker, the
Supervisor and the decisions sink.
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
from planstream.adapters.kafka import decisions_sink, ensure_changelogs, ensure_topics, replay_sink
from planstream.credentials import check_secrets
from planstream.domain.service_names import WORKERS
from planstream.settings import Settings

SERVICES = WORKERS
# The services that are no Faust app: each one's run(settings) returns at SIGTERM.
PLAIN = {"sweeper": sweeper.run, "decisions_sink": decisions_sink.run}
REPLAYABLE = ("info_worker", "comparison_worker", "supervisor", "decisions_sink")
PLAIN_REPLAY = {"decisions_sink": replay_sink.run}
REPLAY_FLAG = "--replay"


def main(argv: list[str]) -> int:
    replay = REPLAY_FLAG in argv
    args = [arg for arg in argv if arg != REPLAY_FLAG]
    if len(args) != 1 or args[0] not in SERVICES or (replay and args[0] not in REPLAYABLE):
        print(
            f"usage: python -m agents {{{','.join(SERVICES)}}}\n"
            f"       python -m agents {{{','.join(REPLAYABLE)}}} {REPLAY_FLAG}",
            file=sys.stderr,
        )
        return 2
    service = args[0]
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
    plain = PLAIN_REPLAY if replay else PLAIN
    if service in plain:
        plain[service](settings)
        return 0
    app = create_app(settings, service, replay=replay)
    importlib.import_module(f"agents.{service}").build(app)
    # Its tables' changelogs as well, before the group's first assignment needs them (F15).
    loop.run_until_complete(ensure_changelogs(settings, app.changelog_topics()))
    ServiceWorker(app, loop).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
