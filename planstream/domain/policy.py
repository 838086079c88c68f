"""The quality policy: which resolution tier a step runs at and which long edges it accepts."""

from dataclasses import dataclass
from typing import Final

from planstream.domain.events import Quality

__all__ = [
    "BANDS",
    "RENDER_LONG_EDGE",
    "Band",
    "check_dimensions",
    "model_size",
    "quality_for_step",
    "render_size",
]

LAST_FIXED_QUALITY_STEP: Final = 3


@dataclass(frozen=True)
class Band:
    """Accepted long-edge range of a quality tier, in pixels, both ends included."""

    min_long_edge: int
    max_long_edge: int

    def contains(self, long_edge: int) -> bool:
        return self.min_long_edge <= long_edge <= self.max_long_edge


BANDS: Final[dict[Quality, Band]] = {
    "1K": Band(900, 1700),
    "2K": Band(1900, 3300),
    "4K": Band(3600, 6400),
}


def quality_for_step(step_id: int, quality_post_step4: Quality) -> Quality:
    """Steps 0-3 always run at 2K; steps 4 and later at the run's chosen tier."""
    return "2K" if step_id <= LAST_FIXED_QUALITY_STEP else quality_post_step4


RENDER_LONG_EDGE: Final[dict[Quality, int]] = {"1K": 1280, "2K": 2048, "4K": 4096}
"""The long edge a render is asked for, in the middle of its tier's band."""


def render_size(source_width: int, source_height: int, quality: Quality) -> tuple[int, int]:
    """A render's size: the tier's long edge, the source's aspect, even pixel counts."""
    long_edge = RENDER_LONG_EDGE[quality]
    scale = long_edge / max(source_width, source_height)
    width = max(2, round(source_width * scale / 2) * 2)
    height = max(2, round(source_height * scale / 2) * 2)
    return width, height


def model_size(target: tuple[int, int], offered: tuple[str, ...]) -> tuple[int, int]:
    """The size to ask the image model for: ``target`` itself, or the offered size closest in
    aspect (then the largest), when the model only makes a fixed set (gpt-image-1's three)."""
    if not offered:
        return target
    aspect = target[0] / target[1]
    sizes = [tuple(int(n) for n in size.split("x")) for size in offered]
    width, height = min(sizes, key=lambda s: (abs(s[0] / s[1] - aspect), -s[0] * s[1]))
    return width, height


def check_dimensions(width: int, height: int, quality: Quality) -> str | None:
    """Why ``width`` x ``height`` does not fit the tier, or None when it does."""
    band = BANDS[quality]
    long_edge = max(width, height)
    if band.contains(long_edge):
        return None
    return (
        f"long edge {long_edge}px ({width}x{height}) is outside the {quality} band "
        f"{band.min_long_edge}-{band.max_long_edge}px"
    )
