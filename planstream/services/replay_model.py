"""The model of a replay: production's recorded answers (``frozen``), or the model itself
behind the replay's cost cap (``live``), chosen per call by the replay of the event in hand.

A frozen replay answers each chat call with the recorded answer of the same run, step, attempt
and purpose (``current_call`` names them): the content of production's last call that got an
answer. A call recorded before answers were kept is reconstructed from what production stored
(docs/replay.md): extraction from the Spaces document, the audit from the decision's score and
contradictions, the request comparison from its ``REQUEST_MISMATCH`` failures; the attempt is
then noted as reconstructed. A recorded failure is replayed as that failure. Nothing recorded
is ``AnswerNotRecorded`` (permanent: the attempt fails in the replay, no decision is invented).
The frozen client never reaches a model: it holds none.

A live replay's call is refused before it is made (``CostCapReached``, the rule
``REPLAY_COST_CAP``) when the replay's cost so far plus the call's estimate would pass its cap.
The estimate is the prompt's tokens and every token the answer may use, at the price table's
rates, and it is reserved (added to the replay's cost) in the same statement that checks the
cap, so calls in flight at once cannot pass it together; after the call the reservation is
corrected to the call's cost (given back when it got no answer).
"""

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from planstream.domain.errors import PermanentError, RecordMissing
from planstream.domain.prompts import AUDIT, COMPARISON, EXTRACTION
from planstream.domain.rules import REQUEST_MISMATCH
from planstream.ports import (
    ArtifactStore,
    ChatAnswer,
    CostCapReached,
    ImageAnswer,
    ModelClient,
    ModelRefused,
    ModelUnavailable,
    OriginalDecision,
    Purpose,
    RecordedAnswers,
    ReplayLedger,
    ReplayTerms,
)
from planstream.services.model_budget import CallSpec, current_call, price
from planstream.services.rate_limits import prompt_tokens
from planstream.settings import Settings

__all__ = [
    "AnswerNotRecorded",
    "CostGate",
    "CurrentReplay",
    "FrozenModel",
    "ReplayModel",
    "audit_answer",
    "comparison_answer",
]

log = logging.getLogger(__name__)

_PURPOSES: Final[Mapping[str, Purpose]] = {
    EXTRACTION.schema_name: "extract",
    COMPARISON.schema_name: "compare",
    AUDIT.schema_name: "audit",
}
_UNANSWERED: Final = frozenset({"timeout", "unreachable", "throttled", "failed"})
_TEXT_CHARS: Final = 300  # the longest description or contradiction the answer schemas allow
_MAX_MISMATCHES: Final = 20
_MAX_CONTRADICTIONS: Final = 10


class AnswerNotRecorded(PermanentError):
    """A frozen replay found no recorded answer for a call, nor anything to rebuild it from."""


class UnknownReplay(RecordMissing):
    """The event names a replay the registry does not hold."""


class CurrentReplay:
    """The replay whose event the running task handles: its id (from the context the app set)
    and its terms. A replay's mode and cap never change, so its terms are read once."""

    def __init__(
        self, ledger: ReplayLedger, replay_id: Callable[[], str | None], max_cached: int = 256
    ) -> None:
        self.ledger = ledger
        self._replay_id = replay_id
        self._terms: dict[str, ReplayTerms] = {}
        self._max_cached = max_cached

    def id(self) -> str:
        """The replay's id; refused outside one (nothing of a replay runs without it)."""
        replay_id = self._replay_id()
        if replay_id is None:
            raise PermanentError("replay mode: no replay is set for this work")
        return replay_id

    async def terms(self) -> tuple[str, ReplayTerms]:
        """The replay's id and its mode and cap."""
        replay_id = self.id()
        terms = self._terms.get(replay_id)
        if terms is None:
            terms = await self.ledger.terms(replay_id)
            if terms is None:
                raise UnknownReplay(f"replay {replay_id} is not in the registry")
            if len(self._terms) >= self._max_cached:
                self._terms.pop(next(iter(self._terms)))
            self._terms[replay_id] = terms
        return replay_id, terms


def _step_call() -> CallSpec:
    spec = current_call.get()
    if spec is None:
        raise AnswerNotRecorded("a replay answers only the model calls of a step attempt")
    return spec


def _answer(content: str | None, finish_reason: str | None, source: str) -> ChatAnswer:
    """A chat answer made of a recorded content: no tokens, no latency, no cost."""
    body = {
        "object": "chat.completion",
        "planstream_replay": source,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content},
            }
        ],
    }
    return ChatAnswer(content, None, finish_reason, 0, 0, 0, json.dumps(body).encode())


def audit_answer(decision: OriginalDecision) -> str | None:
    """A ``decision_audit_v1`` answer from a decision's recorded audit; None when it scored
    nothing (the audit was skipped, refused or unusable)."""
    if decision.consistency_score is None:
        return None
    notes = [text[:_TEXT_CHARS] for text in decision.contradictions[:_MAX_CONTRADICTIONS]]
    return json.dumps({"consistency_score": decision.consistency_score, "contradictions": notes})


def comparison_answer(decision: OriginalDecision) -> str:
    """A ``request_comparison_v1`` answer from a decision's ``REQUEST_MISMATCH`` failures."""
    mismatches = [
        {"description": failure.detail[:_TEXT_CHARS], "severity": failure.severity}
        for failure in decision.failures
        if failure.rule == REQUEST_MISMATCH.name and failure.severity in ("low", "medium", "high")
    ]
    return json.dumps({"mismatches": mismatches[:_MAX_MISMATCHES]})


class FrozenModel:
    """A ``ModelClient`` that answers from production's records and never calls a model."""

    def __init__(
        self,
        records: RecordedAnswers,
        storage: ArtifactStore,
        settings: Settings,
        replay: CurrentReplay,
    ) -> None:
        self._records = records
        self._storage = storage
        self._settings = settings
        self._replay = replay

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        spec = _step_call()
        event, purpose = spec.event, _PURPOSES.get(schema_name, spec.purpose)
        where = f"run {event.run_id} step {event.step_id} attempt {event.attempt} ({purpose})"
        recorded = await self._records.call(event.run_id, event.step_id, event.attempt, purpose)
        if recorded is not None:
            if recorded.content is not None or recorded.finish_reason == "oversize":
                return _answer(recorded.content, recorded.finish_reason, "recorded")
            if recorded.outcome == "refused":
                raise ModelRefused(recorded.error or f"the model refused {where} (recorded)")
            if recorded.outcome in _UNANSWERED:
                # As recorded, without waiting: each call of the budget fails the same way.
                raise ModelUnavailable(
                    f"{where}: the recorded call ended {recorded.outcome}", "timeout", 0.0
                )
        content = await self._reconstructed(spec, purpose, where)
        await self._replay.ledger.note_reconstructed(
            self._replay.id(), event.run_id, event.step_id, event.attempt
        )
        log.info("replay: %s answered from what production stored", where)
        return _answer(content, "stop", f"reconstructed {purpose}")

    async def _reconstructed(self, spec: CallSpec, purpose: Purpose, where: str) -> str:
        """The answer rebuilt from production's stored results of the attempt."""
        event = spec.event
        if purpose == "extract":
            artifact = await self._records.spaces_artifact(
                event.run_id, event.step_id, event.attempt
            )
            if artifact is None:
                raise AnswerNotRecorded(f"{where}: no recorded answer and no Spaces document")
            data = await self._storage.read(
                artifact.storage_bucket,
                artifact.storage_path,
                self._settings.model_max_response_bytes,
            )
            return data.decode("utf-8", "replace")
        decision = await self._records.decision(event.run_id, event.step_id, event.attempt)
        if decision is None:
            raise AnswerNotRecorded(f"{where}: no recorded answer and no Supervisor decision")
        if purpose == "compare":
            return comparison_answer(decision)
        audit = audit_answer(decision) if purpose == "audit" else None
        if audit is None:
            raise AnswerNotRecorded(f"{where}: no recorded answer and no scored audit")
        return audit

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        raise AnswerNotRecorded("a replay renders no image")


class CostGate:
    """A ``ModelClient`` that calls the model only while the replay's cap allows it, and adds
    each answered call's cost to the replay's."""

    def __init__(
        self,
        model: Callable[[], Awaitable[ModelClient]],
        settings: Settings,
        replay: CurrentReplay,
    ) -> None:
        self._model = model  # opened on the first live call: a frozen replay never opens it
        self._settings = settings
        self._replay = replay

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        s, ledger = self._settings, self._replay.ledger
        replay_id, terms = await self._replay.terms()
        tokens = prompt_tokens(messages, schema, s.model_image_prompt_tokens)
        estimate = price(s, model, tokens, s.model_max_output_tokens)
        if not await ledger.reserve(replay_id, estimate):
            spent = await ledger.spent(replay_id)
            raise CostCapReached(
                f"replay {replay_id} has spent {spent:.6f} USD of its {terms.max_usd or 0:.6f}"
                f" USD cap; this {model} call may cost up to {estimate:.6f} USD"
            )
        try:
            client = await self._model()
            answer = await client.chat(
                model=model, messages=messages, schema_name=schema_name, schema=schema
            )
        except BaseException:
            if estimate > 0:
                await ledger.add_cost(replay_id, -estimate)
            raise
        cost = price(s, model, answer.input_tokens, answer.output_tokens)
        if cost != estimate:
            await ledger.add_cost(replay_id, cost - estimate)
        return answer

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        raise PermanentError("a replay renders no image")


class ReplayModel:
    """The replay's ``ModelClient``: frozen or live by the mode of the event's replay."""

    def __init__(self, replay: CurrentReplay, frozen: ModelClient, live: ModelClient) -> None:
        self._replay = replay
        self._frozen = frozen
        self._live = live

    async def _client(self) -> ModelClient:
        _, terms = await self._replay.terms()
        return self._frozen if terms.mode == "frozen" else self._live

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> ChatAnswer:
        client = await self._client()
        return await client.chat(
            model=model, messages=messages, schema_name=schema_name, schema=schema
        )

    async def edit_image(
        self, *, model: str, image_png: bytes, prompt: str, width: int, height: int
    ) -> ImageAnswer:
        raise PermanentError("a replay renders no image")
