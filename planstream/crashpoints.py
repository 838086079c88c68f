"""Named places where a process can be told to die at once, for the fault suite.

A process whose ``crashpoints`` setting names a point calls ``os._exit(137)`` when it gets
there: no cleanup, no flush, no commit, as a ``kill -9`` would leave it. Unset (the default),
a crash point costs one set lookup.
"""

import logging
import os
from typing import Final

__all__ = ["CRASHPOINTS", "arm", "crashpoint"]

log = logging.getLogger(__name__)

CRASHPOINTS: Final = frozenset(
    {
        "image_io.after_emit",
        "info_worker.after_model_call",
        "info_worker.after_emit",
        "comparison_worker.after_emit",
        "supervisor.after_decision",
        "supervisor.after_follow",
        "render_worker.after_store",
        "decisions_sink.after_write",
        "dedup.after_emit_before_mark",
    }
)

_armed: set[str] = set()


def arm(points: tuple[str, ...]) -> None:
    """Arm the named points for this process (unknown names are a configuration error)."""
    unknown = set(points) - CRASHPOINTS
    if unknown:
        raise ValueError(f"unknown crash points: {', '.join(sorted(unknown))}")
    _armed.clear()
    _armed.update(points)
    if _armed:
        log.warning("crash points armed: %s", ", ".join(sorted(_armed)))


def crashpoint(name: str) -> None:
    """Die here with exit code 137 if ``name`` is armed."""
    if name in _armed:
        log.critical("crash point %s reached: exiting with 137", name)
        logging.shutdown()
        os._exit(137)
