"""T28's checkers on broken histories that must fail them, and its corpus kept honest: each body
attack is one the ingress's strict reader refuses naming the field the attack expects, and each
raw event is one its consumer's decoding refuses for the reason the attack expects (but the two
that only the database or the claim can refuse)."""

import pytest

from planstream.adapters.http.edge import BodyRefused, strict_json
from planstream.dev.chaos.abuse import (
    STILL_OPEN,
    UNSAFE_TEXTS,
    HttpAttack,
    Outcome,
    body_attacks,
    owner_attacks,
    text_attacks,
)
from planstream.dev.chaos.answers import (
    Ending,
    Injected,
    Letter,
    endings_unexpected,
    letters_of,
    quota_spilled,
    raw_events_mishandled,
    unexpected_answers,
    verdict_of,
    wrong_tallies,
)
from planstream.dev.chaos.attacks import status_of
from planstream.dev.chaos.inject import MadeRun
from planstream.dev.chaos.raw_abuse import raw_attacks, unclaimed_review
from planstream.dev.chaos.streams import DeadLetter, Record
from planstream.domain.errors import EventRejected
from planstream.domain.ids import new_id
from planstream.domain.wire import decode_event
from planstream.settings import Settings


def _attack(name: str, *statuses: int, names: str | None = None, group: str = "") -> HttpAttack:
    return HttpAttack(name, "t", "POST", "/v1/x", frozenset(statuses), names, group=group)


def test_every_text_attack_is_refused_by_the_strict_reader_naming_its_field() -> None:
    attacks = text_attacks()
    assert len(attacks) == 8 * len(UNSAFE_TEXTS)  # seven fields and a key, each text
    for attack in attacks:
        assert attack.body is not None
        with pytest.raises(BodyRefused) as refused:
            strict_json(attack.body)
        assert refused.value.field == attack.names, attack.name
    for attack in body_attacks(Settings()):
        if attack.family == "json":
            assert attack.body is not None
            with pytest.raises(BodyRefused):
                strict_json(attack.body)


def test_every_raw_event_is_refused_by_its_consumer_for_the_reason_it_names() -> None:
    victim = MadeRun(new_id("run"), new_id("art"), None)  # the sample is never read
    attacks = raw_attacks(victim, new_id("run"))
    for attack in attacks:
        assert attack.topic.value_model is not None
        if attack.reason == "foreign key":  # well-formed: only the database refuses it
            decode_event(attack.topic.value_model, attack.value, 50_000)
            continue
        with pytest.raises(EventRejected) as refused:
            decode_event(attack.topic.value_model, attack.value, 50_000)
        assert attack.reason in str(refused.value), (attack.name, str(refused.value))
    review = unclaimed_review(new_id("run"))
    assert review.topic.value_model is not None
    decode_event(review.topic.value_model, review.value, 50_000)  # only the claim refuses it


def test_an_answer_that_is_not_expected_or_names_the_wrong_thing_is_counted() -> None:
    good = [
        Outcome(_attack("a", 422, names="reason"), 422, "reason"),
        Outcome(_attack("b", 201, 429, names="Retry-After"), 201),
        Outcome(_attack("c", 201, 429, names="Retry-After"), 429, "Retry-After"),
        Outcome(_attack("d", 404), 404, None),
    ]
    assert unexpected_answers(good).value == 0
    bad = [
        Outcome(_attack("e", 401, names="invalid_token"), 200),  # let in
        Outcome(_attack("f", 422, names="reason"), 422, "action"),  # the wrong field
        Outcome(_attack("g", 201, 429, names="Retry-After"), 429, None),  # no Retry-After
        Outcome(_attack("h", 408), STILL_OPEN),  # a slow body held open
    ]
    found = unexpected_answers([*good, *bad])
    assert found.value == len(bad)
    assert found.evidence[0].startswith("t/e: 200")


def test_tallies_that_do_not_add_up_are_counted() -> None:
    race = [Outcome(_attack("r", 202, 409, group="race"), status) for status in (202, 409)]
    wanted = {"race": {202: 1, 409: 1}}
    assert wrong_tallies(race, wanted).value == 0
    forked = [Outcome(_attack("r", 202, 409, group="race"), 202) for _ in range(2)]
    assert wrong_tallies(forked, wanted).value == 1  # both reviews taken
    assert wrong_tallies([], wanted).value == 1  # the race never ran


def test_a_429_to_another_subject_is_a_spill() -> None:
    assert quota_spilled([("abuser", 429), ("abuser", 201), ("load", 202)], "abuser").value == 0
    found = quota_spilled([("abuser", 429), ("bystander", 429), ("load", 429)], "abuser")
    assert found.value == 2 and found.evidence == ("bystander: 429", "load: 429")


def _letter(offset: int, error: str, service: str = "supervisor") -> Record:
    headers = (
        ("planstream-source-topic", b"t"),
        ("planstream-source-partition", b"0"),
        ("planstream-source-offset", str(offset).encode()),
        ("planstream-error", error.encode()),
        ("planstream-service", service.encode()),
    )
    return Record("dlq", 0, offset, b"k", b"v", headers, 0)


def test_raw_events_need_one_dead_letter_from_their_service_saying_why() -> None:
    injected = [
        Injected("nul", ("t", 0, 1), "U+0000", "supervisor"),
        Injected("fk", ("t", 0, 2), "foreign key", "decisions_sink"),
    ]
    letters = letters_of(
        [
            DeadLetter(_letter(1, "reason: holds a control character (U+0000)")),
            DeadLetter(_letter(2, "violates foreign key constraint", "decisions_sink")),
        ]
    )
    assert raw_events_mishandled(injected, letters).value == 0
    broken = [
        Injected("twice", ("t", 0, 1), "U+0000", "supervisor"),  # two letters below
        Injected("silent", ("t", 0, 3), "U+0000", "supervisor"),  # none: it was taken
        Injected("vague", ("t", 0, 4), "U+0000", "supervisor"),  # a letter without the reason
        Injected("elsewhere", ("t", 0, 5), "U+0000", "supervisor"),  # another service's
        Injected("refused by the broker", ("t", None, None), "U+0000", "supervisor"),
    ]
    more = [
        *letters,
        Letter(("t", 0, 1), "again (U+0000)", "supervisor"),
        Letter(("t", 0, 4), "something failed", "supervisor"),
        Letter(("t", 0, 5), "holds (U+0000)", "image_io"),
    ]
    found = raw_events_mishandled(broken, more)
    assert found.value == len(broken), found.evidence


def _ending(status: str, reason: str | None, rules: set[str], *wanted) -> Ending:
    return Ending("run_1", "label", status, reason, frozenset(rules), tuple(wanted))


def test_a_run_that_ends_otherwise_than_its_scenario_is_counted() -> None:
    completes = ("completed", None)
    endings = [
        _ending("completed", None, set(), completes),
        _ending("blocked", "NOT_A_FLOOR_PLAN", {"NOT_A_FLOOR_PLAN"}, ("blocked", None)),
        _ending("blocked", "retry_budget_exhausted", {"MODEL_UNAVAILABLE"}, completes),  # slow
    ]
    assert endings_unexpected(endings, ("MODEL_UNAVAILABLE",)).value == 0
    assert verdict_of(endings[2], ("MODEL_UNAVAILABLE",)) == "excused"
    broken = [
        _ending("completed", None, set(), ("blocked", "IMAGE_ANIMATED")),  # a bomb let through
        _ending("blocked", "IMAGE_TOO_LARGE", {"IMAGE_TOO_LARGE"}, ("blocked", "IMAGE_ANIMATED")),
        _ending("failed", None, set(), completes),
        _ending("blocked", "x", {"MODEL_UNAVAILABLE", "SCHEMA_INVALID"}, completes),  # not only
        _ending("blocked", "x", {"MODEL_UNAVAILABLE"}, ("rejected", None)),  # excuses completions
    ]
    found = endings_unexpected([*endings, *broken], ("MODEL_UNAVAILABLE",))
    assert found.value == len(broken)
    assert endings_unexpected(endings[2:]).value == 1  # nothing excused unless named


def test_the_head_of_a_raw_exchange_is_read() -> None:
    assert status_of(b"HTTP/1.1 408 Request Timeout\r\n\r\n") == 408
    assert status_of(b"") == 0
    assert status_of(None) == STILL_OPEN


def test_owner_attacks_name_what_a_404_and_403_must() -> None:
    attacks = {a.name: a for a in owner_attacks(new_id("run"), new_id("upl"))}
    assert attacks["another's upload"].names == "upload_id"
    assert attacks["a user reviews"].expected == frozenset({403})
