"""What every step service does the same way: hold the step attempt (its run and its job's
lease), stamp what it produced with versions, and store an output under its content hash."""

import hashlib
from dataclasses import dataclass

from planstream.domain.errors import RecordMissing
from planstream.domain.events import StepEvent, Versions
from planstream.domain.ids import new_id
from planstream.domain.records import Artifact, ArtifactKind, Run
from planstream.domain.rules import RULES_VERSION
from planstream.domain.spaces import SPACES_VERSION
from planstream.services.jobs import StepWork
from planstream.services.runtime import Runtime
from topics import TopicSpec

__all__ = ["HeldStep", "UnknownRun", "hold_step", "step_versions", "store_by_digest"]


class UnknownRun(RecordMissing):
    """The step event names a run that does not exist."""


@dataclass(frozen=True)
class HeldStep:
    """A step attempt this worker holds: its run, and the lease on its job (``async with`` it)."""

    run: Run
    work: StepWork


async def hold_step(rt: Runtime, event: StepEvent, source: TopicSpec) -> HeldStep | None:
    """The step attempt's run and its job's lease, or None when the job is not ours to do.

    One round trip reads the run and takes the lease (``Jobs.begin_with_run``); the job is only
    touched when the run exists, so an event about an unknown run is refused (``UnknownRun``,
    dead-lettered) without touching a job. The run is read in the lease's own snapshot: what
    reading it under the lease would see (the fields a service reads, quality tier and request
    text, never change anyway).
    """
    taken = await rt.jobs.begin_with_run(event, source)
    if taken is None:
        raise UnknownRun(f"run {event.run_id} does not exist")
    run, work = taken
    if work is None:
        return None
    return HeldStep(run, work)


def step_versions(prompt: str, model: str, rules: str = RULES_VERSION) -> Versions:
    """What made a step's output: the Spaces schema of this build, a prompt, a model, and the
    rules in force (``Policy.version``: the catalogue and its thresholds)."""
    return Versions(spaces_schema=SPACES_VERSION, prompt=prompt, model=model, rules=rules)


async def store_by_digest(
    rt: Runtime,
    event: StepEvent,
    kind: ArtifactKind,
    data: bytes,
    *,
    name: str,
    suffix: str,
    content_type: str,
) -> str:
    """Store ``data`` at ``<prefix>runs/<run>/step-<step>/<name>-<sha256><suffix>`` and record
    it; the same bytes always give the same object and artifact id. The store's prefix is ''
    in production and ``replays/<replay_id>/`` in a replay, so the recorded path is always
    where the object is."""
    digest = hashlib.sha256(data).hexdigest()
    path = f"{rt.storage.prefix}runs/{event.run_id}/step-{event.step_id}/{name}-{digest}{suffix}"
    await rt.storage.write(path, data, content_type)
    return await rt.repo.store_artifact(
        Artifact(
            artifact_id=new_id("art"),
            run_id=event.run_id,
            step_id=event.step_id,
            kind=kind,
            storage_bucket=rt.storage.bucket,
            storage_path=path,
            metadata={"sha256": digest, "byte_size": len(data)},
        )
    )
