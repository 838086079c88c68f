"""Info Worker: the vision model reads the step's image into a Spaces document.

The image goes to the model as a short-lived signed URL; the answer is asked for against the
strict Spaces schema, judged (``planstream.domain.analysis``), and stored in S3 keyed by its content
hash, next to the raw response. ``InfoExtracted`` carries artifact ids and a few counts only.
"""

import json
import logging
from dataclasses import dataclass
from typing import Final

from planstream.crashpoints import crashpoint
from planstream.domain.analysis import judge_answer
from planstream.domain.contracts import spaces_schema_for_model
from planstream.domain.errors import RecordMissing
from planstream.domain.events import Failure, ImageReady, InfoExtracted, InfoRequested, StepEvent
from planstream.domain.ids import new_id
from planstream.domain.prompts import EXTRACTION, extraction_messages
from planstream.domain.records import ArtifactKind
from planstream.ports import ChatAnswer
from planstream.services.jobs import StepWork
from planstream.services.model_budget import BudgetedCaller, CallSpec, chat_usage
from planstream.services.rate_limits import prompt_tokens
from planstream.services.runtime import Runtime
from planstream.services.signing import CallUrl
from planstream.services.step_attempt import step_versions, store_by_digest
from topics import IMAGE_READY, INFO_EXTRACTED, INFO_REQUESTED

__all__ = ["SERVICE", "InfoWorker", "store_json_artifact"]

log = logging.getLogger(__name__)

SERVICE: Final = "info_worker"


async def store_json_artifact(
    rt: Runtime, event: StepEvent, kind: ArtifactKind, data: bytes
) -> str:
    """Store JSON ``data`` under a content-hash key; the same bytes give the same artifact."""
    return await store_by_digest(
        rt, event, kind, data, name=kind, suffix=".json", content_type="application/json"
    )


@dataclass(frozen=True)
class _Extraction:
    """What one extraction produced: stored artifacts, or the failure in their place."""

    spaces_id: str | None
    raw_id: str | None
    space_count: int
    failure: Failure | None
    calls_used: int


class InfoWorker:
    """The Info Worker's logic for one step attempt; the agent runs many of these at once."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._caller = BudgetedCaller.of(runtime, SERVICE)
        self._schema = spaces_schema_for_model()

    async def handle(self, request: ImageReady | InfoRequested) -> None:
        rt = self._rt
        work = await rt.jobs.begin(
            request, IMAGE_READY if isinstance(request, ImageReady) else INFO_REQUESTED
        )
        if work is None:
            return
        async with work:
            image_id = request.artifact_ids[0]
            image = await rt.repo.artifact(image_id)
            if image is None:
                raise RecordMissing(
                    f"image artifact {image_id} vanished after Image I/O checked it"
                )
            url = rt.signed_urls.for_calls(image)
            extraction = await self._extract(request, work, url)
            await self._publish(request, work, image_id, extraction)

    async def _extract(
        self, request: ImageReady | InfoRequested, work: StepWork, url: CallUrl
    ) -> _Extraction:
        """Ask the model within the step's budget, keep its raw answer, judge and store it."""
        rt = self._rt
        model = rt.settings.model_vision
        messages = extraction_messages(await url())
        estimate = prompt_tokens(messages, self._schema, rt.settings.model_image_prompt_tokens)
        spec = CallSpec(request, work.lease.job_id, "extract", model, EXTRACTION.version, estimate)

        async def ask() -> ChatAnswer:
            # The URL again before each try: a retry window can outlast the one asked first.
            return await rt.model.chat(
                model=model,
                messages=extraction_messages(await url()),
                schema_name=EXTRACTION.schema_name,
                schema=self._schema,
            )

        answered = await self._caller.call(spec, ask, chat_usage)
        crashpoint("info_worker.after_model_call")
        answer = answered.answer
        if answer is None:
            return _Extraction(None, None, 0, answered.failure, answered.calls_used)
        raw_id = await store_json_artifact(rt, request, "model_response", answer.raw)
        judgement = judge_answer(
            answer.content,
            answer.refusal,
            answer.finish_reason,
            rt.settings.model_max_response_bytes,
        )
        if judgement.document is None or answer.content is None:
            return _Extraction(None, raw_id, 0, judgement.failure, answered.calls_used)
        canonical = json.dumps(json.loads(answer.content), sort_keys=True).encode()
        spaces_id = await store_json_artifact(rt, request, "spaces_json", canonical)
        count = len(judgement.document.spaces)
        return _Extraction(spaces_id, raw_id, count, None, answered.calls_used)

    async def _publish(
        self,
        request: ImageReady | InfoRequested,
        work: StepWork,
        image_id: str,
        extraction: _Extraction,
    ) -> None:
        rt = self._rt
        failure = extraction.failure
        extracted = InfoExtracted(
            **request.same_step(new_id("evt"), rt.clock()),
            job_id=work.lease.job_id,
            image_artifact_id=image_id,
            spaces_artifact_id=extraction.spaces_id,
            raw_artifact_id=extraction.raw_id,
            space_count=extraction.space_count,
            failure=failure,
            model_calls=max(1, extraction.calls_used),
            versions=step_versions(EXTRACTION.version, rt.settings.model_vision),
        )
        await rt.publisher.publish(INFO_EXTRACTED, extracted)
        crashpoint("info_worker.after_emit")
        await rt.jobs.finish(
            work,
            "completed",
            {"event_id": extracted.event_id, "spaces_artifact_id": extraction.spaces_id},
            error=f"{failure.rule}: {failure.detail}" if failure else None,
        )
