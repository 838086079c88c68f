"""Signed URLs on the fakes: a cached URL is reused only while it is intact, for its own object,
and outlives the margin by its own expiry and the row's; and the tries of one model call ask
again, so a URL that expires inside a retry window is minted anew, never handed to the model."""

from datetime import timedelta

from planstream.domain.events import InfoExtracted
from planstream.domain.records import Artifact
from planstream.services.info_worker import SERVICE, InfoWorker
from tests.fakes import FakeWorld, make_world, throttled
from tests.fakes.model import ChatRequest
from tests.unit.services.steps import make_image_ready, plan_answer
from topics import INFO_EXTRACTED

_SHORT = {"signed_url_ttl_s": 60, "signed_url_refresh_margin_s": 10}


async def _image(world: FakeWorld) -> tuple[str, Artifact]:
    run, source = await world.new_run()
    image = await world.repo.artifact(source)
    assert image is not None
    return run.run_id, image


async def _cache(world: FakeWorld, image: Artifact, url: str, valid_s: float) -> Artifact:
    await world.repo.cache_signed_url(
        image.artifact_id, url, world.clock() + timedelta(seconds=valid_s)
    )
    cached = await world.repo.artifact(image.artifact_id)
    assert cached is not None
    return cached


async def test_an_intact_cached_url_is_reused_while_it_outlives_the_margin() -> None:
    world = make_world(**_SHORT)
    urls = world.runtime(SERVICE).signed_urls
    _, image = await _image(world)
    first = await urls.for_artifact(image)
    cached = await world.repo.artifact(image.artifact_id)
    assert cached is not None
    assert await urls.for_artifact(cached) == first
    world.clock.advance(51)  # 9 s left, under the 10 s margin
    assert await urls.for_artifact(cached) != first


async def test_a_cached_url_the_store_did_not_sign_for_this_object_is_minted_again() -> None:
    world = make_world(**_SHORT)
    urls = world.runtime(SERVICE).signed_urls
    _, image = await _image(world)
    _, other = await _image(world)
    for_other = await world.storage.presign_get(other.storage_bucket, other.storage_path, 60)
    signed = await world.storage.presign_get(image.storage_bucket, image.storage_path, 60)
    altered = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    for bad in (for_other, altered):
        cached = await _cache(world, image, bad, valid_s=3_600)
        fresh = await urls.for_artifact(cached)
        assert fresh != bad
        assert world.storage.signed_until(fresh, image.storage_bucket, image.storage_path)


async def test_a_row_that_outlives_its_url_does_not_keep_it() -> None:
    """A URL that expires in 1 s, cached as if it had an hour (a clock or TTL mismatch)."""
    world = make_world(**_SHORT)
    urls = world.runtime(SERVICE).signed_urls
    _, image = await _image(world)
    short = await world.storage.presign_get(image.storage_bucket, image.storage_path, 1)
    cached = await _cache(world, image, short, valid_s=3_600)
    world.clock.advance(2)
    assert await urls.for_artifact(cached) != short


async def test_a_url_that_expires_inside_the_retry_window_is_minted_again() -> None:
    world = make_world(**_SHORT)
    run_id, image = await _image(world)

    async def slow_429(_: ChatRequest) -> object:
        world.clock.advance(55)  # the first URL now has 5 s left, under the margin
        raise throttled()

    world.model.script_chat(slow_429, plan_answer())  # type: ignore[arg-type]

    await InfoWorker(world.runtime(SERVICE)).handle(make_image_ready(run_id, image.artifact_id))

    extracted = world.publisher.only(INFO_EXTRACTED, InfoExtracted)
    assert (extracted.failure, extracted.model_calls) == (None, 1)
    first, second = (_image_url(r) for r in world.model.chat_requests)
    assert first != second
    assert world.storage.signed_until(second, image.storage_bucket, image.storage_path)
    cached = await world.repo.artifact(image.artifact_id)
    assert cached is not None and cached.signed_url_cached == second


def _image_url(request: ChatRequest) -> str:
    for part in request.messages[1]["content"]:
        if part["type"] == "image_url":
            return str(part["image_url"]["url"])
    raise AssertionError("no image in the request")
