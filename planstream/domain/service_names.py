"""The one list of planstream's services, for the launcher, the CLI, the agents and the events.

A worker's name is its process (``python -m agents NAME``, ``planstream worker NAME``) and its
Faust app id (``planstream-NAME``); a step service's is also the ``service`` of its jobs and of
the ``step.failed`` events it publishes. The tuples are the Literals' values, in their order.
"""

from typing import Final, Literal, get_args

__all__ = [
    "DECISIONS_SINK",
    "IMAGE_IO",
    "LEGACY",
    "LEGACY_BRIDGE",
    "REPLAY_WORKERS",
    "STEP_SERVICES",
    "WORKERS",
    "ServiceName",
    "StepServiceName",
    "WorkerName",
    "job_service",
]

StepServiceName = Literal[
    "image_io", "info_worker", "comparison_worker", "supervisor", "render_worker"
]
"""The services that hold a job, with a lease, for each step attempt they work on."""
WorkerName = Literal[StepServiceName, "legacy_bridge", "decisions_sink", "sweeper"]
"""Every worker process: the step services, the bridge to the old ``run-pipeline-step``
function (docs/migration.md), the decisions sink and the sweeper."""
ServiceName = Literal["ingress", StepServiceName, "legacy", "operator"]
"""Who may report a step's failure (``StepFailed.service``): the ingress, a step, the legacy
path, an operator."""

STEP_SERVICES: Final[tuple[StepServiceName, ...]] = get_args(StepServiceName)
WORKERS: Final[tuple[WorkerName, ...]] = get_args(WorkerName)
"""The workers in the order they are started; the ingress runs apart (``planstream serve``)."""

IMAGE_IO: Final[StepServiceName] = "image_io"
LEGACY_BRIDGE: Final[WorkerName] = "legacy_bridge"
LEGACY: Final[ServiceName] = "legacy"
"""The ``service`` of the legacy bridge's jobs: a step attempt run by the old function."""
DECISIONS_SINK: Final[WorkerName] = "decisions_sink"
REPLAY_WORKERS: Final[tuple[WorkerName, ...]] = (
    "info_worker",
    "comparison_worker",
    "supervisor",
    "decisions_sink",
)
"""The workers a replay's attempts go through, each with a replay mode (``--replay``,
docs/replay.md): from the Info Worker's analysis to the decision in the replay's schema."""


def job_service(worker: str) -> str:
    """The ``service`` of the jobs a worker holds: its own name, but ``legacy`` for the bridge
    (the jobs of the legacy path are the old function's, whatever runs the bridge)."""
    return LEGACY if worker == LEGACY_BRIDGE else worker
