"""The quality policy: tiers per step and long-edge bands, boundaries included."""

import pytest

from planstream.domain.policy import check_dimensions, model_size, quality_for_step, render_size


@pytest.mark.parametrize(
    ("step_id", "chosen", "expected"),
    [(0, "4K", "2K"), (3, "1K", "2K"), (4, "4K", "4K"), (6, "1K", "1K"), (5, "2K", "2K")],
)
def test_steps_0_to_3_always_run_at_2k(step_id: int, chosen: str, expected: str) -> None:
    assert quality_for_step(step_id, chosen) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("width", "height", "quality", "fits"),
    [
        (1900, 1200, "2K", True),
        (1899, 1200, "2K", False),
        (3300, 2000, "2K", True),
        (3301, 2000, "2K", False),
        (1200, 3300, "2K", True),
        (900, 600, "1K", True),
        (899, 600, "1K", False),
        (1700, 1700, "1K", True),
        (1701, 10, "1K", False),
        (3600, 2400, "4K", True),
        (3599, 2400, "4K", False),
        (6400, 4800, "4K", True),
        (6401, 4800, "4K", False),
        (4096, 3072, "2K", False),
    ],
)
def test_long_edge_bands(width: int, height: int, quality: str, fits: bool) -> None:
    problem = check_dimensions(width, height, quality)  # type: ignore[arg-type]
    assert (problem is None) is fits
    if not fits:
        assert f"outside the {quality} band" in problem  # type: ignore[operator]


@pytest.mark.parametrize(
    ("source", "quality", "size"),
    [
        ((2400, 1800), "2K", (2048, 1536)),
        ((1800, 2400), "4K", (3072, 4096)),
        ((2048, 1536), "1K", (1280, 960)),
        ((3001, 1999), "2K", (2048, 1364)),
    ],
)
def test_render_size_keeps_the_aspect_inside_the_band(source, quality, size) -> None:
    width, height = render_size(*source, quality)
    assert (width, height) == size
    assert check_dimensions(width, height, quality) is None


GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536")


@pytest.mark.parametrize(
    ("target", "offered", "asked"),
    [
        ((2048, 1536), (), (2048, 1536)),
        ((2048, 1536), GPT_IMAGE_SIZES, (1536, 1024)),
        ((1536, 2048), GPT_IMAGE_SIZES, (1024, 1536)),
        ((2048, 2048), GPT_IMAGE_SIZES, (1024, 1024)),
        ((4096, 1024), ("512x512", "1024x512", "2048x1024"), (2048, 1024)),
    ],
)
def test_model_size_picks_the_closest_aspect(target, offered, asked) -> None:
    assert model_size(target, offered) == asked
