"""The replay boundary of the Faust glue: the codec refuses a replay's event in production and
production's in a replay, both ways; a replay app has its own id, subscribes to the replay
twins only and keeps its dedup marks under the replay id; its metrics are labelled apart."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from planstream.adapters.faust.app import _dedup_key, app_id, create_app
from planstream.adapters.kafka.codec import EventCodec, ReplayMismatch
from planstream.domain.errors import EventRejected
from planstream.domain.events import InfoExtracted
from planstream.domain.ids import new_id
from planstream.domain.wire import encode_event
from planstream.services import metrics
from planstream.settings import Settings
from tests.unit.services.steps import make_info_extracted
from topics import IMAGE_READY, INFO_EXTRACTED, INFO_REQUESTED, replay_twin

RPL = "rpl_" + "d4" * 16
LIMIT = 50_000


def _extracted(replay_id: str | None) -> InfoExtracted:
    return make_info_extracted(new_id("run"), new_id("art"), None, replay_id=replay_id)


@pytest.mark.parametrize(("replay", "refused_id"), [(False, RPL), (True, None)])
def test_the_codec_refuses_the_other_side_of_the_boundary(
    replay: bool, refused_id: str | None
) -> None:
    codec = EventCodec(InfoExtracted, LIMIT, replay=replay)
    wrong, right = _extracted(refused_id), _extracted(None if replay is False else RPL)

    with pytest.raises(ReplayMismatch) as decoding:
        codec.loads(encode_event(wrong, LIMIT))
    with pytest.raises(ReplayMismatch):
        codec.dumps(wrong)  # nor is it ever sent

    assert isinstance(decoding.value, EventRejected)  # dead-lettered, never retried
    reason = str(decoding.value)
    if replay:
        assert "carries no replay_id: a replay worker acts only on a replay's events" in reason
    else:
        assert f"carries replay_id {RPL}: a replay's event never acts in production" in reason
    assert codec.loads(codec.dumps(right)) == right


def test_a_cloned_codec_keeps_its_side() -> None:
    clone = EventCodec(InfoExtracted, LIMIT, replay=True).clone()
    assert isinstance(clone, EventCodec)
    with pytest.raises(ReplayMismatch):
        clone.loads(encode_event(_extracted(None), LIMIT))


def test_a_replay_keeps_its_dedup_marks_under_its_id() -> None:
    production, replayed = _extracted(None), _extracted(RPL)
    key = f"comparison_worker:InfoExtracted:{production.idempotency_key}"
    assert _dedup_key("comparison_worker", production) == key
    assert _dedup_key("comparison_worker", replayed) == (
        f"{RPL}:comparison_worker:InfoExtracted:{replayed.idempotency_key}"
    )


def test_a_replay_app_has_its_own_id() -> None:
    settings = Settings(app_id_suffix="-t1")
    assert app_id(settings, "supervisor") == "planstream-supervisor-t1"
    assert app_id(settings, "supervisor", replay=True) == "planstream-replay-supervisor-t1"


@pytest.fixture
def restored_metrics() -> Iterator[None]:
    yield
    metrics._EXPOSED[0] = REGISTRY


def test_a_replay_app_subscribes_to_the_twins_only(tmp_path: Path, restored_metrics: None) -> None:
    settings = Settings(work_dir=tmp_path, topic_namespace="t1.")
    app = create_app(settings, "info_worker", replay=True)

    topic = app.event_topic(INFO_EXTRACTED)
    assert list(topic.topics) == [f"t1.{replay_twin(INFO_EXTRACTED).name}"]
    assert app.event_topic(replay_twin(INFO_EXTRACTED)).topics == topic.topics
    assert topic.value_serializer.replay is True  # type: ignore[union-attr]

    started: list[Any] = []

    @app.agent(app.event_topic(IMAGE_READY), name="images")
    async def images(stream: Any) -> None:  # Image I/O's images: no replay travels them
        started.append(stream)

    @app.agent(app.event_topic(INFO_REQUESTED), name="retries")
    async def retries(stream: Any) -> None:
        started.append(stream)

    assert sorted(app.agents) == ["retries"]
    assert app.conf.id == "planstream-replay-info_worker"
    production = create_app(settings, "info_worker")
    assert list(production.event_topic(INFO_EXTRACTED).topics) == [f"t1.{INFO_EXTRACTED.name}"]


def test_a_replay_process_labels_its_metrics_apart(restored_metrics: None) -> None:
    metrics.count_retry("supervisor", "ReplayProbe")
    before = generate_latest(metrics.exposed()).decode()
    assert 'reason="ReplayProbe",service="supervisor"}' in before
    assert 'mode="replay"' not in before

    metrics.label_mode("replay")
    after = generate_latest(metrics.exposed()).decode()

    assert 'planstream_retries_total{mode="replay",reason="ReplayProbe",service="supervisor"}' in (
        after
    )
    samples = [line for line in after.splitlines() if line and not line.startswith("#")]
    assert all('mode="replay"' in line for line in samples)
