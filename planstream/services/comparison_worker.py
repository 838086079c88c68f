"""Comparison Worker: the Spaces document against spaces-v1, the rule catalogue and the request.

It re-validates the stored document with fastjsonschema, runs the rules of RULES.md, and, when
the run has a request text, asks the model to compare the spaces with it (the text travels as
quoted data; the answer is schema-checked). ``ComparisonCompleted`` lists the failures.
"""

import json
import logging
from typing import Any, Final

import fastjsonschema

from planstream.crashpoints import crashpoint
from planstream.domain.events import (
    MAX_LISTED_FAILURES,
    ComparisonCompleted,
    Failure,
    InfoExtracted,
)
from planstream.domain.ids import new_id
from planstream.domain.prompts import COMPARISON, comparison_messages
from planstream.domain.records import Artifact
from planstream.domain.rules import (
    SCHEMA_INVALID,
    Mismatch,
    Policy,
    evaluate_document,
    request_failures,
)
from planstream.domain.spaces import (
    ImageSize,
    JsonRejected,
    SchemaViolation,
    load_spaces,
    parse_json,
)
from planstream.services.model_budget import BudgetedCaller, CallSpec, chat_usage
from planstream.services.rate_limits import prompt_tokens
from planstream.services.runtime import Runtime
from planstream.services.step_attempt import hold_step, step_versions
from topics import COMPARISON_COMPLETED, INFO_EXTRACTED

__all__ = ["SERVICE", "ComparisonWorker", "image_size"]

log = logging.getLogger(__name__)

SERVICE: Final = "comparison_worker"
_check_mismatches = fastjsonschema.compile(COMPARISON.schema)
_NO_DOCUMENT = SchemaViolation("the Info Worker stored no Spaces document for this step")


def image_size(metadata: dict[str, Any]) -> ImageSize | None:
    """The real size Image I/O measured, if it did."""
    width, height = metadata.get("width_px"), metadata.get("height_px")
    if isinstance(width, int) and isinstance(height, int):
        return ImageSize(width, height)
    return None


class ComparisonWorker:
    """The Comparison Worker's logic for one step attempt."""

    def __init__(self, runtime: Runtime, policy: Policy) -> None:
        self._rt = runtime
        self._policy = policy
        self._caller = BudgetedCaller.of(runtime, SERVICE)

    async def handle(self, extracted: InfoExtracted) -> None:
        rt = self._rt
        held = await hold_step(rt, extracted, INFO_EXTRACTED)
        if held is None:
            return
        async with held.work as work:
            failures, schema_valid = await self._failures(
                extracted, work.lease.job_id, held.run.request_text
            )
            completed = ComparisonCompleted(
                **extracted.same_step(new_id("evt"), rt.clock()),
                job_id=work.lease.job_id,
                image_artifact_id=extracted.image_artifact_id,
                spaces_artifact_id=extracted.spaces_artifact_id,
                schema_valid=schema_valid,
                passed=not failures,
                failures=failures[:MAX_LISTED_FAILURES],
                failure_count=len(failures),
                model_calls=extracted.model_calls,
                versions=step_versions(
                    COMPARISON.version, rt.settings.model_text, self._policy.version
                ),
            )
            await rt.publisher.publish(COMPARISON_COMPLETED, completed)
            crashpoint("comparison_worker.after_emit")
            await rt.jobs.finish(
                work, "completed", {"event_id": completed.event_id, "failures": len(failures)}
            )

    async def _failures(
        self, extracted: InfoExtracted, job_id: str, request_text: str | None
    ) -> tuple[list[Failure], bool]:
        """The document rules, then the request mismatches; whether the schema held."""
        if extracted.failure is not None:
            return [extracted.failure], False
        wanted = [extracted.image_artifact_id, extracted.spaces_artifact_id]
        found = await self._rt.repo.artifacts([i for i in wanted if i])  # both in one read
        spaces_id = extracted.spaces_artifact_id
        raw = await self._stored_document(found.get(spaces_id) if spaces_id else None)
        loaded = load_spaces(raw) if raw is not None else _NO_DOCUMENT
        image_artifact = found.get(extracted.image_artifact_id)
        image = image_size(image_artifact.metadata) if image_artifact else None
        failures = evaluate_document(loaded, image, self._policy)
        if isinstance(loaded, SchemaViolation):
            return failures, False
        if request_text:
            spaces = json.loads(raw or b"null")
            failures += await self._request_failures(extracted, job_id, request_text, spaces)
        return failures, True

    async def _stored_document(self, artifact: Artifact | None) -> bytes | None:
        rt = self._rt
        if artifact is None:
            return None
        return await rt.storage.read(
            artifact.storage_bucket, artifact.storage_path, rt.settings.model_max_response_bytes
        )

    async def _request_failures(
        self, extracted: InfoExtracted, job_id: str, request_text: str, spaces: object
    ) -> list[Failure]:
        rt = self._rt
        model = rt.settings.model_text
        messages = comparison_messages(request_text, spaces)
        estimate = prompt_tokens(messages, COMPARISON.schema, rt.settings.model_image_prompt_tokens)
        answered = await self._caller.call(
            CallSpec(extracted, job_id, "compare", model, COMPARISON.version, estimate),
            lambda: rt.model.chat(
                model=model,
                messages=messages,
                schema_name=COMPARISON.schema_name,
                schema=COMPARISON.schema,
            ),
            chat_usage,
        )
        if answered.answer is None:
            return [answered.failure] if answered.failure else []
        mismatches = _mismatches(answered.answer.content)
        if mismatches is None:
            return [SCHEMA_INVALID.failure("the request comparison is not request_comparison_v1")]
        return request_failures(mismatches)


def _mismatches(content: str | None) -> list[Mismatch] | None:
    """The comparison's mismatches, or None when the answer breaks its schema."""
    try:
        answer = _check_mismatches(parse_json(content or ""))
    except (fastjsonschema.JsonSchemaException, JsonRejected):
        return None
    return [Mismatch(m["description"], m["severity"]) for m in answer["mismatches"]]
