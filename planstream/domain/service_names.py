"""The one list of planstream's services, for the launcher, the CLI, the agents and the events.

A worker's name is its process (``python -m agents NAME``, ``planstream worker NAME``) and its
Faust app id (``planstream-NAME``); a step service's is also the ``service`` of its jobs and of
the ``step.failed`` events it publishes. The tuples are the Literals' values, in their order.
"""

from typing import Final, Literal, get_args

__all__ = [
    "DECISIONS_SINK",
    "IMAGE_IO",
    "STEP_SERVICES",
    "WORKERS",
    "ServiceName",
    "StepServiceName",
    "WorkerName",
]

StepServiceName = Literal[
    "image_io", "info_worker", "comparison_worker", "supervisor", "render_worker"
]
"""The services that hold a job, with a lease, for each step attempt they work on."""
WorkerName = Literal[StepServiceName, "decisions_sink", "sweeper"]
"""Every worker process: the step services, the decisions sink and the sweeper."""
ServiceName = Literal["ingress", StepServiceName, "operator"]
"""Who may report a step's failure (``StepFailed.service``): the ingress, a step, an operator."""

STEP_SERVICES: Final[tuple[StepServiceName, ...]] = get_args(StepServiceName)
WORKERS: Final[tuple[WorkerName, ...]] = get_args(WorkerName)
"""The workers in the order they are started; the ingress runs apart (``planstream serve``)."""

IMAGE_IO: Final[StepServiceName] = "image_io"
DECISIONS_SINK: Final[WorkerName] = "decisions_sink"
