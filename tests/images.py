"""Real image files for integration tests (the hostile ones are built in
planstream/dev/chaos/bombs.py, shared with the fault suite)."""

import io

from PIL import Image, ImageDraw


def floor_plan_png(width: int = 2400, height: int = 1800) -> bytes:
    """A plain line drawing: outer walls and one partition."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((50, 50, width - 50, height - 50), outline="black", width=12)
    draw.line((width // 2, 50, width // 2, height - 50), fill="black", width=8)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def floor_plan_jpeg(width: int = 2000, height: int = 2600, orientation: int = 6) -> bytes:
    image = Image.new("RGB", (width, height), "white")
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=80)
    return buffer.getvalue()
