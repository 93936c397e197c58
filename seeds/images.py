"""Product tiles drawn locally with Pillow: a garment silhouette on a soft background and the title.

No downloads: every image is generated at seed time from the product's kind, colour and title,
so the demo works offline and always looks the same.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 640
SCALE = 2  # drawn at twice the size, then downsampled: smooth edges
Colour = tuple[int, int, int]
Points = list[tuple[float, float]]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# Silhouettes in a 100 x 100 box (x right, y down), as "x,y x,y ..." outlines.
_OUTLINES = {
    "tee": "32,14 42,14 50,20 58,14 68,14 88,30 79,42 70,36 70,88 30,88 30,36 21,42 12,30",
    "longsleeve": "32,12 42,12 50,18 58,12 68,12 84,28 94,76 81,79 70,42 70,88 30,88 30,42 19,79 6,76 16,28",
    "coat": "34,8 44,8 50,16 56,8 66,8 84,26 94,76 81,79 72,40 76,94 24,94 28,40 19,79 6,76 16,26",
    "gilet": "34,10 44,10 50,20 56,10 66,10 72,30 72,90 28,90 28,30",
    "dress": "38,8 45,8 50,14 55,8 62,8 64,30 60,42 86,92 14,92 40,42 36,30",
    "skirt": "32,22 68,22 70,30 90,84 10,84 30,30",
    "trousers": "30,8 70,8 76,92 56,92 50,36 44,92 24,92",
    "shorts": "26,24 74,24 80,72 56,74 50,48 44,74 20,72",
    "romper": "34,8 40,8 40,24 60,24 60,8 66,8 70,32 72,60 80,86 56,90 50,68 44,90 20,86 28,60 30,32",
    "hat": "32,36 68,36 72,60 92,68 8,68 28,60",
    "beanie": "24,76 24,50 30,34 42,26 58,26 70,34 76,50 76,76",
}
_OUTLINES |= {"jacket": _OUTLINES["longsleeve"], "hoodie": _OUTLINES["longsleeve"]}
SHAPES: dict[str, Points] = {
    kind: [(float(x), float(y)) for x, y in (pair.split(",") for pair in outline.split())]
    for kind, outline in _OUTLINES.items()
}


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines[:2]


def _details(
    draw: ImageDraw.ImageDraw,
    kind: str,
    box: tuple[float, float, float],
    line: Colour,
    accent: Colour,
) -> None:
    x0, y0, unit = box

    def p(x: float, y: float) -> tuple[float, float]:
        return (x0 + x * unit, y0 + y * unit)

    w = max(2, round(unit * 0.8))
    if kind in ("jacket", "coat", "gilet"):
        top, bottom = (16, 88) if kind != "coat" else (16, 94)
        draw.line([p(50, top), p(50, bottom)], fill=line, width=w)
        for y in range(top + 10, bottom - 4, 14):
            draw.ellipse([p(46.5, y - 2), p(49, y + 0.5)], fill=accent)
    elif kind == "hoodie":
        draw.ellipse([p(38, 2), p(62, 22)], outline=line, width=w)
        draw.rounded_rectangle([p(38, 62), p(62, 76)], radius=unit * 3, outline=line, width=w)
    elif kind == "dress":
        draw.line([p(40, 42), p(60, 42)], fill=accent, width=w * 2)
    elif kind == "romper":
        draw.ellipse([p(44, 36), p(47, 39)], fill=accent)
        draw.ellipse([p(53, 36), p(56, 39)], fill=accent)
    elif kind == "hat":
        draw.ellipse([p(30, 22), p(70, 50)], fill=None, outline=line, width=w)
        draw.line([p(30, 58), p(70, 58)], fill=accent, width=w * 2)
    elif kind == "beanie":
        draw.ellipse([p(42, 10), p(58, 26)], fill=accent)
        draw.line([p(24, 64), p(76, 64)], fill=line, width=w)
    elif kind in ("tee", "longsleeve"):
        draw.arc([p(42, 8), p(58, 24)], 20, 160, fill=line, width=w)
    elif kind in ("trousers", "shorts", "skirt"):
        top = 8 if kind == "trousers" else 22 if kind == "skirt" else 24
        draw.line([p(32, top + 6), p(68, top + 6)], fill=line, width=w)


@lru_cache(maxsize=4)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def draw_tile(title: str, kind: str, colour: Colour, brand: str) -> Image.Image:
    """One product tile: background tinted by the garment colour, silhouette, title and brand."""
    s = SIZE * SCALE
    white: Colour = (255, 255, 255)
    ink: Colour = (48, 44, 52)
    background = _mix(colour, white, 0.82)
    img = Image.new("RGB", (s, s), background)
    draw = ImageDraw.Draw(img)
    band_top = round(s * 0.74)
    draw.ellipse([s * 0.14, s * 0.08, s * 0.86, s * 0.72], fill=_mix(colour, white, 0.7))
    unit = s * 0.56 / 100
    x0, y0 = (s - 100 * unit) / 2, s * 0.1
    fill = colour if sum(colour) < 690 else _mix(colour, (180, 170, 150), 0.25)
    line = _mix(fill, (0, 0, 0), 0.35)
    accent = _mix(fill, white, 0.55) if sum(fill) < 300 else _mix(fill, (0, 0, 0), 0.5)
    points = [(x0 + x * unit, y0 + y * unit) for x, y in SHAPES.get(kind, SHAPES["tee"])]
    draw.polygon(points, fill=fill, outline=line, width=max(2, round(unit * 0.9)))
    _details(draw, kind, (x0, y0, unit), line, accent)
    draw.rectangle([0, band_top, s, s], fill=white)
    font = _font(round(s * 0.056))
    small = _font(round(s * 0.032))
    lines = _wrap(draw, title, font, s * 0.88)
    y = band_top + s * (0.05 if len(lines) == 1 else 0.025)
    for text in lines:
        draw.text((s / 2, y), text, font=font, fill=ink, anchor="mt")
        y += s * 0.068
    draw.text(
        (s / 2, s - s * 0.035), brand.upper(), font=small, fill=_mix(ink, white, 0.45), anchor="mb"
    )
    return img.reduce(SCALE)


def write_tile(path: Path, image: Image.Image) -> None:
    """Write atomically (temp file, then rename): a concurrent seed never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="WEBP", quality=82, method=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_valid_image(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except (OSError, SyntaxError):
        return False
