"""T28's checkers: every attack got its answer, and abuse changed nothing it should not have.

Each takes rows already read (the attacks' outcomes, the dead letters, the runs' endings), so
each is tested on a broken history without the stack (``tests/dev/test_chaos_answers.py``):

- ``unexpected_answers``: an attack answered with a status it may not get, or a refusal that
  does not name what it must (the 422's field, the 401's ``invalid_token``, a 429's
  ``Retry-After``);
- ``wrong_tallies``: attacks counted together whose answers do not add up (two concurrent
  reviews of one block: one 202 and one 409; a burst over a quota: exactly the quota created);
- ``quota_spilled``: a 429 answered to a subject other than the one over its quota;
- ``raw_events_mishandled``: a raw event without exactly one dead letter, or whose dead letter
  does not say why (its reason's fragment) or comes from another service;
- ``endings_unexpected``: a run that did not end as its scenario (or its attack) says; a run a
  scenario expects to complete may instead end blocked only by the rules ``excused`` names (the
  short profile's model timeouts on a loaded machine), reported apart.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from planstream.dev.chaos.abuse import Outcome
from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.streams import DeadLetter

__all__ = [
    "Ending",
    "Injected",
    "Letter",
    "endings_unexpected",
    "letters_of",
    "quota_spilled",
    "raw_events_mishandled",
    "unexpected_answers",
    "verdict_of",
    "wrong_tallies",
]

_EVIDENCE = 10
Source = tuple[str, int, int]  # topic, partition, offset


def unexpected_answers(outcomes: Iterable[Outcome]) -> Check:
    """T28: attacks whose status is not one they may get, or whose refusal names the wrong thing."""
    found = []
    for o in outcomes:
        wanted = o.attack.names
        misnamed = wanted is not None and o.status >= 400 and o.named != wanted
        if o.status not in o.attack.expected or misnamed:
            found.append(
                f"{o.attack.family}/{o.attack.name}: {o.status} naming {o.named!r}, wanted"
                f" {sorted(o.attack.expected)}{f' naming {wanted!r}' if wanted else ''}"
            )
    return Check("T28", "unexpected_answers", len(found), tuple(found[:_EVIDENCE]))


def wrong_tallies(outcomes: Iterable[Outcome], wanted: Mapping[str, Mapping[int, int]]) -> Check:
    """T28: groups of attacks whose statuses do not add up to ``wanted`` (group -> status ->
    count); a group with no outcome at all is wrong too."""
    got: dict[str, Counter[int]] = {group: Counter() for group in wanted}
    for o in outcomes:
        if o.attack.group in got:
            got[o.attack.group][o.status] += 1
    found = [
        f"{group}: {dict(sorted(got[group].items()))}, wanted {dict(sorted(counts.items()))}"
        for group, counts in wanted.items()
        if got[group] != Counter(counts)
    ]
    return Check("T28", "wrong_tallies", len(found), tuple(found[:_EVIDENCE]))


def quota_spilled(answers: Iterable[tuple[str, int]], over_quota: str) -> Check:
    """T28: (subject, status) pairs where a subject other than ``over_quota`` got a 429."""
    found = [
        f"{subject}: 429" for subject, status in answers if status == 429 and subject != over_quota
    ]
    return Check("T28", "quota_spilled_to_other_subjects", len(found), tuple(found[:_EVIDENCE]))


@dataclass(frozen=True)
class Injected:
    """A raw event as it landed, the service that must refuse it and a fragment of why."""

    name: str
    source: tuple[str, int | None, int | None]
    reason: str
    service: str


@dataclass(frozen=True)
class Letter:
    """A dead letter's source record, error and service."""

    source: Source
    error: str
    service: str


def letters_of(letters: Iterable[DeadLetter]) -> list[Letter]:
    """The dead letters read from the topic, with a readable source."""
    rows = []
    for letter in letters:
        try:
            partition = int(letter.header("source-partition"))
            offset = int(letter.header("source-offset"))
        except ValueError:
            continue
        source = (letter.header("source-topic"), partition, offset)
        rows.append(Letter(source, letter.header("error"), letter.header("service")))
    return rows


def raw_events_mishandled(injected: Sequence[Injected], letters: Iterable[Letter]) -> Check:
    """I9/T28: raw events not dead-lettered exactly once by their service, or whose dead letter
    does not hold the fragment that says why (a broker refusal has no offset: mishandled too,
    since each of these is small enough to be taken)."""
    by_source: dict[Source, list[Letter]] = {}
    for letter in letters:
        by_source.setdefault(letter.source, []).append(letter)
    found = []
    for event in injected:
        topic, partition, offset = event.source
        landed = partition is not None and offset is not None
        mine = by_source.get((topic, partition or 0, offset or 0), []) if landed else []
        if len(mine) != 1:
            found.append(f"{event.name}: {len(mine)} dead letter(s)")
        elif event.reason not in mine[0].error or mine[0].service != event.service:
            found.append(
                f"{event.name}: by {mine[0].service!r}, error {mine[0].error[:120]!r}; wanted"
                f" {event.service!r} and {event.reason!r}"
            )
    return Check("I9", "raw_events_mishandled", len(found), tuple(found[:_EVIDENCE]))


@dataclass(frozen=True)
class Ending:
    """How a run ended, and how its scenario or attack says it must: ``wanted`` pairs of
    (status, block reason), a None reason matching any."""

    run_id: str
    label: str
    status: str
    block_reason: str | None
    rules: frozenset[str]  # the rules that failed at the step the run stopped at
    wanted: tuple[tuple[str, str | None], ...]


Verdict = Literal["as expected", "excused", "unexpected"]


def verdict_of(ending: Ending, excused: Collection[str]) -> Verdict:
    """Whether ``ending`` is one it may have, one ``excused`` rules explain, or neither."""
    for status, reason in ending.wanted:
        if ending.status == status and (reason is None or ending.block_reason == reason):
            return "as expected"
    completes = any(status == "completed" for status, _ in ending.wanted)
    if completes and ending.status == "blocked" and ending.rules and ending.rules <= set(excused):
        return "excused"
    return "unexpected"


def endings_unexpected(endings: Iterable[Ending], excused: Collection[str] = ()) -> Check:
    """T28: runs that did not end as their scenario or attack says."""
    found = [
        f"{e.run_id} ({e.label}): {e.status}/{e.block_reason} {sorted(e.rules)}, wanted"
        f" {list(e.wanted)}"
        for e in endings
        if verdict_of(e, excused) == "unexpected"
    ]
    return Check("T28", "runs_ended_unexpectedly", len(found), tuple(found[:_EVIDENCE]))
