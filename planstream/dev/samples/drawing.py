"""Drawing with Pillow: floor plans from a ``Plan``, and images that are not floor plans."""

import functools
import io
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from planstream.dev.samples.doors import Door
from planstream.dev.samples.layout import Plan, canvas_size
from planstream.dev.samples.symbols import draw_symbol

__all__ = ["draw_photo", "draw_plan", "draw_site_plan", "font", "png_bytes"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.cache
def font(size: int) -> Font:
    """Pillow's bundled font at ``size`` px (scalable since Pillow 10.1)."""
    return ImageFont.load_default(size=size)


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG with fixed settings, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _door(draw: ImageDraw.ImageDraw, door: Door, wall_px: int, line_px: int) -> None:
    """A gap in the wall, the door leaf at the hinge and its quarter-circle swing."""
    half = wall_px // 2 + 2
    radius = door.end - door.start
    if door.axis == "horizontal":
        draw.rectangle((door.start, door.at - half, door.end, door.at + half), fill="white")
        hinge = (door.start, door.at)
        leaf = (door.start, door.at + door.swing * radius)
        angles = (0, 90) if door.swing > 0 else (270, 360)
    else:
        draw.rectangle((door.at - half, door.start, door.at + half, door.end), fill="white")
        hinge = (door.at, door.start)
        leaf = (door.at + door.swing * radius, door.start)
        angles = (0, 90) if door.swing > 0 else (90, 180)
    draw.line((hinge, leaf), fill="black", width=line_px * 2)
    arc_box = (hinge[0] - radius, hinge[1] - radius, hinge[0] + radius, hinge[1] + radius)
    draw.arc(arc_box, angles[0], angles[1], fill="black", width=line_px)


def _scale_bar(draw: ImageDraw.ImageDraw, plan: Plan, line_px: int) -> None:
    """A 5 m scale bar in the title band, above the plan's top-right corner."""
    length = round(5 * plan.px_per_m)
    x, y = plan.outline.x_max - length, plan.outline.y_min - plan.outer_wall_px - 70
    draw.line(((x, y), (x + length, y)), fill="black", width=line_px * 2)
    small = font(max(14, plan.rooms[0].label_px * 2 // 3))
    for metre in range(6):
        tick = x + round(metre * plan.px_per_m)
        draw.line(((tick, y - 10), (tick, y + 10)), fill="black", width=line_px)
    draw.text((x, y + 14), "0", font=small, fill="black")
    draw.text((x + length, y + 14), "5 m", font=small, fill="black", anchor="ma")


def draw_plan(plan: Plan) -> Image.Image:
    """The plan as a black-on-white drawing: walls, doors, furniture, labels and dimensions."""
    image = Image.new("RGB", (plan.width, plan.height), "white")
    draw = ImageDraw.Draw(image)
    line_px = max(2, round(plan.px_per_m * 0.015))
    title_px = round(max(plan.width, plan.height) / 55)
    draw.text((plan.outline.x_min, title_px), plan.title, font=font(title_px), fill="black")
    inner = plan.inner_wall_px
    for wall in plan.walls:
        grow_x = inner // 2 if wall.y_min == wall.y_max else 0
        grow_y = inner // 2 if wall.x_min == wall.x_max else 0
        ends = (
            (wall.x_min - grow_x, wall.y_min - grow_y),
            (wall.x_max + grow_x, wall.y_max + grow_y),
        )
        draw.line(ends, fill="black", width=inner)
    outer, box = plan.outer_wall_px, plan.outline
    half = outer // 2
    draw.rectangle(
        (box.x_min - half, box.y_min - half, box.x_max + half, box.y_max + half),
        outline="black",
        width=outer,
    )
    for door in plan.doors:
        on_outline = door.at in (
            (box.y_min, box.y_max) if door.axis == "horizontal" else (box.x_min, box.x_max)
        )
        _door(draw, door, outer if on_outline else inner, line_px)
    for room in plan.rooms:
        for item in room.furniture:
            draw_symbol(draw, item, line_px)
        centre_x = (room.interior.x_min + room.interior.x_max) / 2
        centre_y = (room.interior.y_min + room.interior.y_max) / 2
        size = room.label_px
        draw.text((centre_x, centre_y), room.kind.label, font=font(size), fill="black", anchor="mb")
        small = font(max(12, round(size * 0.8)))
        at = (centre_x, centre_y + size * 0.25)
        draw.text(at, room.dimensions_text, font=small, fill="black", anchor="ma")
    _scale_bar(draw, plan, line_px)
    return image


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], dash: int) -> None:
    x0, y0, x1, y1 = box
    for x in range(x0, x1, 2 * dash):
        draw.line(((x, y0), (min(x + dash, x1), y0)), fill="black", width=4)
        draw.line(((x, y1), (min(x + dash, x1), y1)), fill="black", width=4)
    for y in range(y0, y1, 2 * dash):
        draw.line(((x0, y), (x0, min(y + dash, y1))), fill="black", width=4)
        draw.line(((x1, y), (x1, min(y + dash, y1))), fill="black", width=4)


def draw_site_plan(rng: random.Random, title: str) -> Image.Image:
    """A site plan: plot boundary, road, building footprint, parking, trees and a north arrow."""
    width, height = canvas_size(rng)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    text_px = round(max(width, height) / 60)
    draw.text((40, 30), f"SITE PLAN 1:500 - {title}", font=font(text_px), fill="black")
    road_top = round(height * 0.82)
    draw.rectangle((0, road_top, width, height), fill=(205, 205, 205))
    draw.text(
        (width // 2, (road_top + height) // 2),
        "ROAD",
        font=font(text_px),
        fill="black",
        anchor="mm",
    )
    plot = (round(width * 0.12), round(height * 0.12), round(width * 0.88), road_top - 40)
    _dashed_rectangle(draw, plot, 30)
    house_w, house_h = (
        round(width * rng.uniform(0.25, 0.35)),
        round(height * rng.uniform(0.25, 0.3)),
    )
    house = (plot[0] + 120, plot[1] + 120, plot[0] + 120 + house_w, plot[1] + 120 + house_h)
    draw.rectangle(house, fill=(150, 150, 150), outline="black", width=8)
    centre = ((house[0] + house[2]) // 2, (house[1] + house[3]) // 2)
    draw.text(centre, "HOUSE", font=font(text_px), fill="white", anchor="mm")
    for bay in range(3):
        x = plot[2] - 140 - bay * 130
        draw.rectangle((x, plot[3] - 260, x + 120, plot[3] - 20), outline="black", width=3)
    for _ in range(rng.randint(5, 9)):
        x = rng.randint(house[2] + 100, plot[2] - 100)
        y = rng.randint(plot[1] + 80, plot[3] - 330)
        radius = rng.randint(40, 90)
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), outline=(40, 110, 40), width=5
        )
    arrow_x, arrow_y = width - 150, 170
    draw.polygon(
        ((arrow_x, arrow_y - 90), (arrow_x - 40, arrow_y + 40), (arrow_x + 40, arrow_y + 40)),
        fill="black",
    )
    draw.text((arrow_x, arrow_y + 50), "N", font=font(text_px), fill="black", anchor="ma")
    return image


def draw_photo(rng: random.Random, title: str) -> Image.Image:
    """A blurred, photo-like room scene: gradients, a window, a sofa and a lamp, no plan at all."""
    width, height = canvas_size(rng)
    wall = (rng.randint(200, 235), rng.randint(190, 220), rng.randint(170, 200))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = ImageOps.colorize(gradient, black=wall, white=(90, 70, 55)).convert("RGB")
    draw = ImageDraw.Draw(image)
    horizon = round(height * 0.62)
    draw.polygon(
        (
            (0, height),
            (width, height),
            (round(width * 0.8), horizon),
            (round(width * 0.2), horizon),
        ),
        fill=(150, 115, 80),
    )
    window = (round(width * 0.55), round(height * 0.15), round(width * 0.78), round(height * 0.5))
    draw.rectangle(window, fill=(200, 225, 245), outline=(250, 250, 250), width=14)
    sofa = (round(width * 0.18), round(height * 0.5), round(width * 0.5), round(height * 0.72))
    draw.rounded_rectangle(sofa, radius=40, fill=(70, 90, 120))
    lamp = (round(width * 0.08), round(height * 0.2), round(width * 0.13), round(height * 0.28))
    draw.ellipse(lamp, fill=(255, 240, 190))
    image = image.filter(ImageFilter.GaussianBlur(radius=6))
    caption = ImageDraw.Draw(image)
    caption.text((30, height - 60), title, font=font(28), fill=(250, 250, 250))
    return image
