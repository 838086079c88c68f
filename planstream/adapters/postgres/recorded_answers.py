"""Production's records of a step attempt, read-only, for a frozen replay's model (asyncpg).

Every production table is named ``public.`` here: a replay's pool resolves bare names to the
replay's own copies, and the answers to reuse are production's. The Spaces document of the
attempt is the one its replay selected (``replay_attempts.spaces_artifact_id``, read in the
replay's schema), found in production's artifacts.
"""

from collections.abc import Callable
from typing import Final

import asyncpg

from planstream.adapters.postgres.replay_pool import ReplayUnset
from planstream.adapters.postgres.replay_records import failures_of, score_of
from planstream.adapters.postgres.replay_schema import quoted, schema_name
from planstream.domain.records import Artifact
from planstream.ports import OriginalDecision, Purpose, RecordedCall

__all__ = ["RecordedAnswers"]

# The last try that got an answer, else the last one made (a call still 'started' never ended).
_CALL: Final = """
SELECT outcome, answer, finish_reason, error FROM public.pipeline_model_calls
WHERE run_id = $1 AND step_id = $2 AND attempt = $3 AND purpose = $4 AND outcome <> 'started'
ORDER BY (outcome = 'answered') DESC, created_at DESC, transport_attempt DESC
LIMIT 1
"""

_DECISION: Final = """
SELECT decision_id, rule_checks, llm_audit FROM public.pipeline_decisions
WHERE run_id = $1 AND step_id = $2 AND attempt = $3 AND decided_by = 'supervisor'
"""

_SPACES: Final = """
SELECT a.artifact_id, a.run_id, a.step_id, a.kind, a.storage_bucket, a.storage_path,
       a.signed_url_cached, a.signed_url_expires_at, a.metadata_json
FROM {schema}.replay_attempts r
JOIN public.pipeline_artifacts a ON a.artifact_id = r.spaces_artifact_id
WHERE r.run_id = $1 AND r.step_id = $2 AND r.attempt = $3 AND a.kind = 'spaces_json'
"""


class RecordedAnswers:
    """``ports.RecordedAnswers`` over a replay's pool (``current_replay`` set by the caller)."""

    def __init__(self, pool: asyncpg.Pool, replay_id: Callable[[], str | None]) -> None:
        self._pool = pool
        self._replay_id = replay_id  # the replay in hand: ``current_replay.get``

    async def call(
        self, run_id: str, step_id: int, attempt: int, purpose: Purpose
    ) -> RecordedCall | None:
        row = await self._pool.fetchrow(_CALL, run_id, step_id, attempt, purpose)
        if row is None:
            return None
        return RecordedCall(row["outcome"], row["answer"], row["finish_reason"], row["error"])

    async def decision(self, run_id: str, step_id: int, attempt: int) -> OriginalDecision | None:
        row = await self._pool.fetchrow(_DECISION, run_id, step_id, attempt)
        if row is None:
            return None
        failures, _ = failures_of(row["decision_id"], row["rule_checks"])
        audit = row["llm_audit"] if isinstance(row["llm_audit"], dict) else {}
        notes = audit.get("contradictions")
        listed = notes if isinstance(notes, list) else []
        contradictions = tuple(note for note in listed if isinstance(note, str))
        return OriginalDecision(score_of(audit), contradictions, failures)

    async def spaces_artifact(self, run_id: str, step_id: int, attempt: int) -> Artifact | None:
        replay_id = self._replay_id()
        if replay_id is None:
            raise ReplayUnset("a frozen answer is looked up only inside a replay")
        schema = quoted(schema_name(replay_id))
        row = await self._pool.fetchrow(_SPACES.format(schema=schema), run_id, step_id, attempt)
        if row is None:
            return None
        values = dict(row)
        values["metadata"] = values.pop("metadata_json")
        return Artifact(**values)
