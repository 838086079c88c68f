"""The rate limiter and the transport budget on the fakes: a burst of 429s no longer ends the
step, a 429 slows the model for every process, the wait happens under the renewed lease and ends
at its deadline; the pacing of one call's tries and the prompt's token estimate."""

import asyncio
import dataclasses
import itertools
from datetime import timedelta

import pytest

from planstream.domain.events import ImageReady, InfoExtracted
from planstream.ports import ChatAnswer, ModelUnavailable
from planstream.services.info_worker import SERVICE, InfoWorker
from planstream.services.rate_limits import Allowance, ModelLimiter, Pacing, prompt_tokens
from tests.fakes import FakeWorld, make_world, server_error, throttled
from tests.fakes.model import ChatRequest
from tests.unit.services.steps import make_image_ready, plan_answer
from topics import INFO_EXTRACTED

MODEL = "planstream-scripted-vision"


async def _ready(world: FakeWorld) -> tuple[str, ImageReady]:
    run, source = await world.new_run()
    return run.run_id, make_image_ready(run.run_id, source)


def _limited(rpm: int, **settings: object) -> FakeWorld:
    """A world whose vision model may be called ``rpm`` times a minute, one at once."""
    return make_world(
        model_rate_limits={MODEL: (rpm, 10**9)}, model_limiter_burst_s=60 / rpm, **settings
    )


async def test_a_burst_of_429s_no_longer_exhausts_the_step() -> None:
    world = make_world()
    run_id, ready = await _ready(world)
    world.model.script_chat(*[throttled(retry_after_s=2.0)] * 7, plan_answer())
    began = world.clock()

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert (extracted.failure, extracted.model_calls) == (None, 1)
    calls = world.model_calls.calls(run_id)
    assert [c.transport_attempt for c in calls] == list(range(1, 9))
    assert [c.outcome for c in calls] == ["throttled"] * 7 + ["answered"]
    assert world.clock() - began >= timedelta(seconds=7 * 2.0)  # each Retry-After honoured


async def test_a_429_pauses_the_model_for_every_process() -> None:
    world = make_world()
    run_id, ready = await _ready(world)
    elsewhere = ModelLimiter(world.settings, world.limiter.sibling(), world.sleep)
    await elsewhere.throttle(MODEL, 12.0)  # another worker process was answered 429
    world.model.script_chat(plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    [call] = world.model_calls.calls(run_id)
    assert (call.outcome, call.waited_ms) == ("answered", 12_000)


async def test_a_429_here_pauses_the_model_for_the_other_processes() -> None:
    world = make_world()
    _, ready = await _ready(world)
    world.model.script_chat(throttled(retry_after_s=3.0), plan_answer())
    bucket = ModelLimiter(world.settings, world.limiter, world.sleep).bucket(MODEL)
    others = []

    async def sleep(seconds: float) -> None:
        """While this worker waits out the 429, another process asks for a turn."""
        others.append(await world.limiter.sibling().reserve(bucket, 0, 60.0))
        await world.sleep(seconds)

    runtime = dataclasses.replace(world.runtime(SERVICE), sleep=sleep)
    await InfoWorker(runtime).handle(ready)

    assert others == [pytest.approx(3.0)]


async def test_a_call_whose_transport_budget_runs_out_spends_one_call_of_the_step() -> None:
    world = make_world()
    run_id, ready = await _ready(world)
    world.model.script_chat(*[server_error()] * 8, plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert (extracted.failure, extracted.model_calls) == (None, 2)
    calls = world.model_calls.calls(run_id)
    assert [c.transport_attempt for c in calls] == [*range(1, 9), 1]


async def test_the_wait_is_under_the_renewed_lease() -> None:
    world = _limited(20, lease_s=5, model_timeout_s=1.0, model_retry_after_cap_s=0.5)
    _, ready = await _ready(world)
    drained = ModelLimiter(world.settings, world.limiter, world.sleep)
    assert await drained.wait_turn(MODEL, 0, _allowance()) == 0.0  # the one free turn
    leases_during_the_call = []

    async def answer(request: ChatRequest) -> ChatAnswer:
        job = world.job(SERVICE, ready.idempotency_key)
        leases_during_the_call.append(job["lease_expires_at"] > world.clock())
        return plan_answer()

    async def sleep(seconds: float) -> None:
        """Fake time runs twice as fast: the 3 s wait outlives the 5 s lease, and the heartbeat
        (every 5 / 3 s of real time) comes round inside it."""
        world.clock.advance(seconds * 2)
        await asyncio.sleep(seconds)

    world.model.script_chat(answer)
    runtime = dataclasses.replace(world.runtime(SERVICE), sleep=sleep)
    await InfoWorker(runtime).handle(ready)

    assert leases_during_the_call == [True]  # renewed while waiting, so still held
    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert extracted.failure is None
    assert world.job(SERVICE, ready.idempotency_key)["status"] == "completed"


async def test_the_deadline_ends_the_wait() -> None:
    world = _limited(1, model_limiter_max_wait_s=30.0, model_limiter_recheck_s=5.0)
    run_id, ready = await _ready(world)
    drained = ModelLimiter(world.settings, world.limiter, world.sleep)
    assert await drained.wait_turn(MODEL, 0, _allowance()) == 0.0  # the next turn: in 60 s
    world.model.script_chat(plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert extracted.failure is not None and extracted.failure.rule == "MODEL_UNAVAILABLE"
    assert extracted.failure.detail == f"extract: waited 30 s for the rate limit of {MODEL}"
    assert world.model.unplayed == 1 and world.model_calls.calls(run_id) == []
    assert extracted.model_calls == 1  # none was made; the event counts at least one


async def test_the_answer_s_usage_corrects_the_reservation() -> None:
    world = make_world()
    _, ready = await _ready(world)
    world.model.script_chat(plan_answer())

    await InfoWorker(world.runtime(SERVICE)).handle(ready)

    limiter = ModelLimiter(world.settings, world.limiter, world.sleep)
    bucket = limiter.bucket(MODEL)
    levels = world.limiter.table[bucket.provider, bucket.model]
    used = 1_200 + 300  # chat_answer's usage
    assert levels.tokens == pytest.approx(bucket.limit.token_capacity - used)


def _allowance() -> Allowance:
    return Allowance(60.0)


# --- pacing and estimates --------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _unavailable(retry_after_s: float | None = None) -> ModelUnavailable:
    return ModelUnavailable("the model failed with 500", "failed", retry_after_s)


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
async def test_gaps_after_failures_without_retry_after_grow(draw: float) -> None:
    clock = _Clock()
    pacing = Pacing(30.0, clock.sleep, clock, lambda: draw)
    gaps = []
    for limiter_wait in (0.0, 3.0, 0.0, 0.0, 7.0, 0.0):
        pacing.failed(_unavailable())
        began = clock.now
        clock.now += limiter_wait  # the turn at the rate limiter is part of the gap
        await pacing.keep_gap()
        gaps.append(clock.now - began)
    assert all(later >= earlier * 1.25 for earlier, later in itertools.pairwise(gaps))


async def test_retry_after_sets_the_gap_up_to_the_cap() -> None:
    clock = _Clock()
    pacing = Pacing(5.0, clock.sleep, clock, lambda: 0.5)
    assert pacing.failed(_unavailable(retry_after_s=2.0)) == 2.0
    clock.now += 0.5
    await pacing.keep_gap()
    assert clock.slept == [1.5]  # what the limiter's wait left of it
    assert pacing.failed(_unavailable(retry_after_s=60.0)) == 5.0


def test_the_prompt_estimate_counts_characters_and_images() -> None:
    image = {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}
    text = [{"role": "user", "content": [{"type": "text", "text": "x" * 4_000}]}]
    with_images = [{"role": "user", "content": [{"type": "text", "text": "x" * 4_000}, image]}]
    plain = prompt_tokens(text, {"type": "object"}, 1_105)
    assert 1_000 < plain < 1_200
    assert prompt_tokens(with_images, {"type": "object"}, 1_105) > plain + 1_105
    assert prompt_tokens("a render prompt", {}, 0) > 0
