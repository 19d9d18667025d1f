"""Render static/favicon.ico (16, 32, 48 px) and static/apple-touch-icon.png (180 px) from static/icon.svg.

    .venv/bin/python scaling/tools/make_icons.py

Run it after editing icon.svg. The touch icon is drawn full-bleed (square corners): iOS rounds it itself and
would show transparent corners as black.
"""

import io
import re
from pathlib import Path

import pyvips
from PIL import Image

STATIC = Path(__file__).resolve().parents[2] / "static"


def render(svg: str, size: int) -> Image.Image:
    png = pyvips.Image.thumbnail_buffer(svg.encode(), size, height=size).pngsave_buffer()
    return Image.open(io.BytesIO(png)).convert("RGBA")


def main() -> None:
    svg = (STATIC / "icon.svg").read_text()
    frames = [render(svg, size) for size in (48, 32, 16)]
    frames[0].save(STATIC / "favicon.ico", format="ICO", sizes=[(48, 48), (32, 32), (16, 16)], append_images=frames[1:])
    square = re.sub(r'(<rect [^>]*?)\s+rx="\d+"', r"\1", svg, count=1)
    render(square, 180).convert("RGB").save(STATIC / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
