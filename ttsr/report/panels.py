"""Per-image PNG panels: bicubic LR, our SR, the reference's SR, HR, and heat maps of their differences.

Drawn with Pillow (already a pinned dependency for image I/O): no plotting library, no font
cache or display backend, and the same pixels on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Anchors of an inferno-like ramp: black for no difference, through purple and orange, to pale yellow.
RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)
LABEL_HEIGHT = 18
SCALE_HEIGHT = 26
GAP = 6
MIN_TILE_SIDE = 128  # small SR images are enlarged (nearest neighbour, integer factor) to at least this
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)


def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def colormap(values: np.ndarray) -> np.ndarray:
    """[0, 1] values -> uint8 RGB on :data:`RAMP`."""
    position = np.clip(values, 0.0, 1.0) * (len(RAMP) - 1)
    low = np.minimum(position.astype(np.int64), len(RAMP) - 2)
    fraction = (position - low)[..., None]
    colours = RAMP[low] * (1 - fraction) + RAMP[low + 1] * fraction
    mapped: np.ndarray = np.round(colours).astype(np.uint8)
    return mapped


def difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference of two HxWx3 uint8 images, in 8-bit levels."""
    levels: np.ndarray = np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2).astype(np.float64)
    return levels


@dataclass(frozen=True)
class Tile:
    title: str
    image: np.ndarray  # HxWx3 uint8
    scale_max: float | None = None  # heat maps: the difference, in levels, that the ramp's top stands for


def heat_tile(title: str, first: np.ndarray, second: np.ndarray) -> Tile:
    """A heat map of |first - second| scaled to its own maximum (stated under it); zero is black."""
    diff = difference(first, second)
    top = float(diff.max())
    return Tile(title, colormap(diff / top if top > 0 else diff), top)


def _scale_bar(draw: ImageDraw.ImageDraw, left: int, top: int, width: int, scale_max: float) -> None:
    ramp = colormap(np.linspace(0.0, 1.0, width))
    for x, colour in enumerate(ramp):
        draw.line([(left + x, top + 2), (left + x, top + 9)], fill=tuple(int(c) for c in colour))
    label = "identical" if scale_max == 0 else f"{scale_max:g}/255"
    draw.text((left, top + 11), "0", fill=TEXT, font=font(11))
    right = draw.textlength(label, font=font(11))
    draw.text((left + width - right, top + 11), label, fill=TEXT, font=font(11))


def draw_panel(name: str, tiles: list[Tile]) -> tuple[Image.Image, dict[str, list[int]]]:
    """The panel image and, per tile title, the box [left, top, right, bottom] of its pixels."""
    height, width = tiles[0].image.shape[:2]
    zoom = max(1, -(-MIN_TILE_SIDE // min(height, width)))
    tile_w, tile_h = width * zoom, height * zoom
    size = (GAP + len(tiles) * (tile_w + GAP), LABEL_HEIGHT * 2 + tile_h + SCALE_HEIGHT + GAP)
    panel = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(panel)
    draw.text((GAP, 2), name, fill=TEXT, font=font(13))
    boxes = {}
    for index, tile in enumerate(tiles):
        left, top = GAP + index * (tile_w + GAP), 2 * LABEL_HEIGHT
        draw.text((left, LABEL_HEIGHT + 2), tile.title, fill=TEXT, font=font(12))
        picture = Image.fromarray(tile.image).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        panel.paste(picture, (left, top))
        boxes[tile.title] = [left, top, left + tile_w, top + tile_h]
        if tile.scale_max is not None:
            _scale_bar(draw, left, top + tile_h, tile_w, tile.scale_max)
    return panel, boxes


def image_tiles(bicubic: np.ndarray, ours: np.ndarray, reference: np.ndarray, hr: np.ndarray | None) -> list[Tile]:
    tiles = [Tile("bicubic LR x4", bicubic), Tile("ours", ours), Tile("reference", reference)]
    if hr is not None:
        tiles.append(Tile("HR", hr))
    tiles.append(heat_tile("|ours - reference|", ours, reference))
    if hr is not None:
        tiles.append(heat_tile("|ours - HR|", ours, hr))
    return tiles
