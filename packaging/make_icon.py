"""Draw LDM Studio's icon: a sunset picture whose top-left corner is still pixel noise.

It shows what the app does: a diffusion model starts from noise and resolves it, step by step, into
an image; here the denoising sweeps diagonally, noisy blocks blending into the picture beneath.

Writes the SVG (the source of truth; deterministic, seeded) and renders the PNG sizes desktop
environments ask for with Qt's own SVG renderer, so no extra tool is needed:

    QT_QPA_PLATFORM=offscreen python3 packaging/make_icon.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

APP_ID = "io.github.ldmstudio.LDMStudio"
ICON_ROOT = Path(__file__).resolve().parent.parent / "resources" / "icons" / "hicolor"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)

CANVAS = 512
TILE = (32, 32, 448, 448)  # x, y, width, height: a margin like other hicolor app icons
CORNER = 96
CELL = 28  # 16 noise cells across the tile
SKY = ((0.0, (42, 27, 92)), (0.55, (194, 65, 122)), (0.8, (255, 154, 77)))
SUN = (300.0, 286.0, 80.0)  # centre x, centre y, radius
SUN_COLOUR = (255, 214, 110)
BACK_HILL = (35, 52, 94)
FRONT_HILL = (16, 30, 56)


def back_hill(x: float) -> float:
    return 352 + 34 * math.cos((x - 150) / 70)


def front_hill(x: float) -> float:
    return 400 - 46 * math.cos((x - 360) / 95)


def sky(y: float) -> tuple[float, float, float]:
    fraction = min(max((y - TILE[1]) / TILE[3], 0.0), 1.0)
    for (start, low), (end, high) in zip(SKY, SKY[1:], strict=False):
        if fraction <= end:
            mix = (fraction - start) / (end - start) if fraction > start else 0.0
            return lerp(low, high, mix)
    return SKY[-1][1]


def lerp(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, float, float]:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def picture(x: float, y: float) -> tuple[float, float, float]:
    """The clean image's colour at a point: what the noise resolves into."""
    if y > front_hill(x):
        return FRONT_HILL
    if y > back_hill(x):
        return BACK_HILL
    if math.hypot(x - SUN[0], y - SUN[1]) < SUN[2]:
        return SUN_COLOUR
    return sky(y)


def hex_colour(colour: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0), 255)):02x}" for c in colour)


def tile_top(x: float) -> float:
    """The upper edge of the rounded tile at x (the corners are quarter circles)."""
    left, top, width, _ = TILE
    inset = max(left + CORNER - x, x - (left + width - CORNER), 0.0)
    return top + CORNER - math.sqrt(max(CORNER**2 - inset**2, 0.0)) if inset else top


def tile_bottom(x: float) -> float:
    _, top, _, height = TILE
    return 2 * top + height - tile_top(x)


def region_path(left: float, right: float, upper, lower) -> str:
    """A polygon for {left <= x <= right, upper(x) <= y <= lower(x)} inside the rounded tile.

    Sampled every 4 px: Qt's SVG renderer ignores clip-path, so shapes are cut to the tile here.
    """
    samples = max(int((right - left) / 4), 1)
    xs = [left + (right - left) * i / samples for i in range(samples + 1)]
    tops = [max(upper(x), tile_top(x)) for x in xs]
    bottoms = [min(lower(x), tile_bottom(x)) for x in xs]
    kept = [(x, t, b) for x, t, b in zip(xs, tops, bottoms, strict=True) if b > t]
    if not kept:
        return ""
    outline = [(x, t) for x, t, _ in kept] + [(x, b) for x, _, b in reversed(kept)]
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in outline) + " Z"


def constant(value: float):
    return lambda _x: value


def noise_cells(seed: int = 7) -> list[str]:
    """Square cells that are noise at the top-left and fade into the picture along the diagonal."""
    rng = random.Random(seed)
    x0, y0, width, _ = TILE
    cells = []
    count = width // CELL
    for row in range(count):
        for column in range(count):
            left, top = x0 + column * CELL, y0 + row * CELL
            centre = (left + CELL / 2, top + CELL / 2)
            progress = (column + row + 1) / (2 * count)  # 0 at the top-left corner, 1 at the bottom-right
            noise_level = min(max((0.6 - progress) / 0.4 + rng.uniform(-0.2, 0.2), 0.0), 1.0)
            noise = tuple(rng.uniform(0, 255) for _ in range(3))
            if noise_level < 0.1:
                continue
            colour = lerp(picture(*centre), noise, noise_level)
            inside = all(tile_top(x) <= top and top + CELL <= tile_bottom(x) for x in (left, left + CELL))
            if inside:
                cells.append(
                    f'<rect x="{left}" y="{top}" width="{CELL}" height="{CELL}" fill="{hex_colour(colour)}"/>'
                )
                continue
            path = region_path(left, left + CELL, constant(top), constant(top + CELL))
            if path:
                cells.append(f'<path d="{path}" fill="{hex_colour(colour)}"/>')
    return cells


def icon_svg() -> str:
    x, y, width, height = TILE
    stops = "".join(f'<stop offset="{offset}" stop-color="{hex_colour(colour)}"/>' for offset, colour in SKY)
    sun_x, sun_y, radius = SUN
    cells = "\n  ".join(noise_cells())
    size = f'width="{CANVAS}" height="{CANVAS}" viewBox="0 0 {CANVAS} {CANVAS}"'
    sky = f'id="sky" x1="0" y1="{y}" x2="0" y2="{y + height}" gradientUnits="userSpaceOnUse"'
    highlight = (
        f'x="{x + 4}" y="{y + 4}" width="{width - 8}" height="{height - 8}" rx="{CORNER - 4}" '
        'fill="none" stroke="#ffffff" stroke-opacity="0.18" stroke-width="8"'
    )
    return f"""<svg xmlns="http://www.w3.org/2000/svg" {size}>
  <title>LDM Studio</title>
  <!-- generated by packaging/make_icon.py: noise resolving into a picture -->
  <defs>
    <linearGradient {sky}>{stops}</linearGradient>
  </defs>
  <rect x="{x}" y="{y}" width="{width}" height="{height}" rx="{CORNER}" fill="url(#sky)"/>
  <circle cx="{sun_x}" cy="{sun_y}" r="{radius}" fill="{hex_colour(SUN_COLOUR)}"/>
  <path d="{region_path(x, x + width, back_hill, constant(CANVAS))}" fill="{hex_colour(BACK_HILL)}"/>
  <path d="{region_path(x, x + width, front_hill, constant(CANVAS))}" fill="{hex_colour(FRONT_HILL)}"/>
  {cells}
  <rect {highlight}/>
</svg>
"""


def render_pngs(svg_file: Path) -> list[Path]:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (QPainter needs one)
    renderer = QSvgRenderer(str(svg_file))
    if not renderer.isValid():
        raise RuntimeError(f"Qt cannot read {svg_file}")
    written = []
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        target = ICON_ROOT / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target)):
            raise RuntimeError(f"could not write {target}")
        written.append(target)
    return written


def main() -> None:
    svg_file = ICON_ROOT / "scalable" / "apps" / f"{APP_ID}.svg"
    svg_file.parent.mkdir(parents=True, exist_ok=True)
    svg_file.write_text(icon_svg(), encoding="utf-8")
    for path in [svg_file, *render_pngs(svg_file)]:
        print(path)


if __name__ == "__main__":
    main()
