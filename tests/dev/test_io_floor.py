"""The I/O floor on the real stack: a few step-0 runs through its four hops and its sink, each
run decided exactly once, and every process's own count of its operations exactly planstream's
(``floor_counts.STEP_ZERO``). Nothing about timing is asserted."""

from pathlib import Path

from planstream.dev.bench import children
from planstream.dev.bench.floor_chain import IoFloor
from planstream.dev.bench.floor_counts import HOPS, SINK, STEP_ZERO
from planstream.dev.bench.harness import Pipeline
from planstream.dev.bench.rows import decision
from planstream.dev.bench.workspace import open_workspace
from planstream.domain.events import Event
from planstream.domain.ids import new_id
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from tests.unit.services.steps import (
    make_comparison_completed,
    make_image_ready,
    make_info_extracted,
    make_render_requested,
)


def _templates(folder: Path, max_bytes: int) -> list[Path]:
    """What planstream's services publish on a step-0 run (the hops copy their shapes)."""
    run, image, spaces = new_id("run"), new_id("art"), new_id("art")
    events: list[Event] = [
        make_image_ready(run, image),
        make_info_extracted(run, image, spaces, raw_artifact_id=new_id("art")),
        make_comparison_completed(run, image, [], spaces_artifact_id=spaces),
        decision(run),
        make_render_requested(run, image, step_id=1),
    ]
    paths = []
    for index, event in enumerate(events):
        path = folder / f"template-{index}.json"
        path.write_bytes(encode_event(event, max_bytes))
        paths.append(path)
    return paths


async def test_the_floor_decides_a_few_runs_with_exactly_planstreams_operations(
    base_settings: Settings, tmp_path: Path
) -> None:
    workspace = await open_workspace(base_settings, tmp_path)
    try:
        async with Pipeline(workspace, "floor", 2.0, services=False) as pipeline:
            floor = IoFloor(workspace, pipeline)
            await floor.start()
            try:
                templates = _templates(tmp_path, floor.settings.max_event_bytes)
                hops = floor.services(templates)
                async with children.run_children(floor.settings, hops, floor.logs):
                    first = await floor.measure(3, 120)
                    second = await floor.measure(4, 120)
                    await floor.verify()
                operations = floor.check_counts()
                answered = await pipeline.pool.fetchval(
                    "SELECT count(*) FROM io_floor_calls WHERE outcome = 'answered'"
                )
            finally:
                await floor.stop()
    finally:
        await workspace.close()
    for hop in HOPS:
        ops = operations[hop]
        assert ops["runs"] == 7, (hop, ops)
        assert ops["postgres"] == 7 * STEP_ZERO[hop].postgres, (hop, ops)
        assert ops["kafka_produce"] == 7 * STEP_ZERO[hop].kafka_produce, (hop, ops)
    assert operations[SINK]["kafka_consume"] == 7
    assert answered == 7 * sum(floor_ops.model for floor_ops in STEP_ZERO.values())
    for result in (first, second):
        assert result["runs/s"] > 0
        assert {f"cpu_ms:io_floor:{hop}" for hop in (*HOPS, SINK)} <= set(result)
