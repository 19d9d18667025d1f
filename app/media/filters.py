"""Instagram-like looks, each a short declarative recipe run by one small interpreter of libvips operations.

A recipe is data, applied in this fixed order, which is also the order CSS uses for an element's filter and its
::before/::after layers:

1. tone: the curve (points on 0-255, per channel or for all three), then brightness, then contrast; folded into
   one 256-entry lookup table per channel;
2. colour: sepia, saturate, hue-rotate, grayscale; each the W3C Filter Effects matrix, multiplied into one 3x3;
3. overlays: flat colours blended over the picture with a CSS mix-blend-mode at some opacity;
4. vignette: corners darkened by `vignette` (0 none, 1 black), with a smooth fall-off from the middle.

`Recipe.css` gives the live preview for the upload page: steps 1 (without the curve) and 2 as a CSS `filter`
value; `Recipe.css_layers` gives the overlays as (background, mix-blend-mode) pairs for ::before/::after.

The scalar values of several looks follow CSSgram by Una Kravets (MIT); curves and vignettes are Pinhole's own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import pyvips

Points = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Overlay:
    color: tuple[int, int, int]
    opacity: float
    blend: str  # a CSS mix-blend-mode name: one of BLENDS

    @property
    def css(self) -> tuple[str, str]:
        red, green, blue = self.color
        return f"rgba({red}, {green}, {blue}, {self.opacity:g})", self.blend


@dataclass(frozen=True)
class Recipe:
    name: str
    curve: Points = ()  # applied to all three channels, then the per-channel curves below
    red: Points = ()
    green: Points = ()
    blue: Points = ()
    brightness: float = 1.0
    contrast: float = 1.0
    sepia: float = 0.0
    saturate: float = 1.0
    hue_rotate: float = 0.0  # degrees
    grayscale: float = 0.0
    overlays: tuple[Overlay, ...] = field(default=())
    vignette: float = 0.0

    @property
    def css(self) -> str:
        """A CSS `filter` value approximating the recipe (curves and vignette have no CSS filter function)."""
        steps = [
            ("brightness", self.brightness, 1.0, ""),
            ("contrast", self.contrast, 1.0, ""),
            ("sepia", self.sepia, 0.0, ""),
            ("saturate", self.saturate, 1.0, ""),
            ("hue-rotate", self.hue_rotate, 0.0, "deg"),
            ("grayscale", self.grayscale, 0.0, ""),
        ]
        return (
            " ".join(f"{name}({value:g}{unit})" for name, value, neutral, unit in steps if value != neutral) or "none"
        )

    @property
    def css_layers(self) -> list[tuple[str, str]]:
        return [overlay.css for overlay in self.overlays]


FILTERS: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("normal"),
        Recipe(
            "clarendon",
            curve=((0, 0), (64, 58), (192, 200), (255, 255)),
            contrast=1.2,
            saturate=1.35,
            overlays=(Overlay((127, 187, 227), 0.2, "overlay"),),
        ),
        Recipe(
            "gingham",
            curve=((0, 24), (128, 136), (255, 240)),
            brightness=1.05,
            hue_rotate=-10,
            overlays=(Overlay((230, 230, 250), 1.0, "soft-light"),),
        ),
        Recipe(
            "juno",
            red=((0, 0), (128, 140), (255, 255)),
            blue=((0, 0), (128, 118), (255, 245)),
            brightness=1.05,
            contrast=1.15,
            saturate=1.4,
            overlays=(Overlay((255, 225, 160), 0.15, "overlay"),),
        ),
        Recipe(
            "lark",
            curve=((0, 20), (128, 140), (255, 255)),
            contrast=0.9,
            saturate=0.9,
            overlays=(Overlay((34, 37, 63), 1.0, "color-dodge"), Overlay((242, 242, 242), 0.8, "darken")),
        ),
        Recipe(
            "ludwig",
            curve=((0, 8), (128, 134), (255, 250)),
            brightness=1.05,
            contrast=1.05,
            sepia=0.15,
            saturate=0.85,
            overlays=(Overlay((125, 105, 24), 0.1, "overlay"),),
            vignette=0.25,
        ),
        Recipe(
            "moon",
            curve=((0, 12), (64, 58), (192, 200), (255, 255)),
            brightness=1.1,
            contrast=1.1,
            grayscale=1.0,
            overlays=(Overlay((160, 160, 160), 1.0, "soft-light"), Overlay((56, 56, 56), 1.0, "lighten")),
            vignette=0.2,
        ),
        Recipe(
            "reyes",
            curve=((0, 36), (128, 140), (255, 240)),
            brightness=1.1,
            contrast=0.85,
            sepia=0.22,
            saturate=0.75,
            overlays=(Overlay((239, 205, 173), 0.5, "soft-light"),),
        ),
        Recipe(
            "slumber",
            curve=((0, 28), (255, 245)),
            brightness=1.05,
            saturate=0.66,
            overlays=(Overlay((69, 41, 12), 0.4, "lighten"), Overlay((125, 105, 24), 0.5, "soft-light")),
        ),
        Recipe(
            "valencia",
            red=((0, 24), (255, 255)),
            blue=((0, 16), (255, 230)),
            brightness=1.08,
            contrast=1.08,
            sepia=0.08,
            overlays=(Overlay((230, 193, 61), 0.15, "soft-light"),),
        ),
        Recipe(
            "inkwell",
            curve=((0, 0), (64, 54), (192, 204), (255, 255)),
            brightness=1.1,
            contrast=1.1,
            sepia=0.3,
            grayscale=1.0,
        ),
    )
}


class UnknownFilter(ValueError):
    pass


def apply_filter(image: pyvips.Image, name: str) -> pyvips.Image:
    """`image` (3-band sRGB uchar) with the named look applied; the same format out.

    Tone and overlays are per-channel tables (one cheap maplut each, or one in all when there is no colour matrix
    between them), so a look costs a few milliseconds on a 1080 image whatever its recipe."""
    recipe = FILTERS.get(name)
    if recipe is None:
        raise UnknownFilter(f"No filter called {name!r}; choose one of {', '.join(FILTERS)}.")
    tone, layers = _tone_tables(recipe), _overlay_tables(recipe)
    matrix = _colour_matrix(recipe)
    out = image
    if matrix == _IDENTITY:
        out = _map(out, [[layer[value] for value in channel] for channel, layer in zip(tone, layers, strict=True)])
    else:
        out = _map(out, tone)
        out = out.recomb(pyvips.Image.new_from_array(matrix)).rint().cast("uchar")  # cast clips to 0-255
        out = _map(out, layers)
    if recipe.vignette:
        out = (out * _vignette_mask(image.width, image.height, recipe.vignette)).rint().cast("uchar")
    return out.copy(interpretation="srgb")


_UNCHANGED = [list(range(256))] * 3


def _map(image: pyvips.Image, tables: list[list[int]]) -> pyvips.Image:
    """Each channel through its 256-entry table; skipped when the tables change nothing."""
    if tables == _UNCHANGED:
        return image
    red, green, blue = (pyvips.Image.new_from_array([table]).cast("uchar") for table in tables)
    return image.maplut(red.bandjoin([green, blue]))


def _clip(value: float) -> int:
    return min(255, max(0, round(value)))


# --- 1. tone -------------------------------------------------------------------------------------------------------


@functools.cache  # recipes are frozen; a table is worked out once per look
def _tone_tables(recipe: Recipe) -> list[list[int]]:
    """Per channel, each value 0-255 through the shared curve, its own curve, brightness (CSS: v*b), then
    contrast (CSS: (v-0.5)*c+0.5)."""
    shared = _curve(recipe.curve)
    tables = []
    for own in (recipe.red, recipe.green, recipe.blue):
        channel = _curve(own)
        tables.append(
            [
                _clip((channel[_clip(shared[value])] * recipe.brightness - 127.5) * recipe.contrast + 127.5)
                for value in range(256)
            ]
        )
    return tables


def _curve(points: Points) -> list[float]:
    """256 values through `points` by monotone cubic (Fritsch-Carlson) interpolation: smooth, with no overshoot."""
    if not points:
        return [float(value) for value in range(256)]
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    if len(xs) == 1:
        return [ys[0]] * 256
    slopes = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1)]
    tangents = (
        [slopes[0]]
        + [0.0 if slopes[i - 1] * slopes[i] <= 0 else (slopes[i - 1] + slopes[i]) / 2 for i in range(1, len(slopes))]
        + [slopes[-1]]
    )
    for i, slope in enumerate(slopes):
        if slope == 0:
            tangents[i] = tangents[i + 1] = 0.0
            continue
        a, b = tangents[i] / slope, tangents[i + 1] / slope
        if a * a + b * b > 9:
            scale = 3 / math.hypot(a, b)
            tangents[i], tangents[i + 1] = scale * a * slope, scale * b * slope
    values = []
    for value in range(256):
        if value <= xs[0]:
            values.append(ys[0])
            continue
        if value >= xs[-1]:
            values.append(ys[-1])
            continue
        i = next(k for k in range(len(xs) - 1) if value <= xs[k + 1])
        span = xs[i + 1] - xs[i]
        t = (value - xs[i]) / span
        h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
        h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
        values.append(h00 * ys[i] + h10 * span * tangents[i] + h01 * ys[i + 1] + h11 * span * tangents[i + 1])
    return [min(255.0, max(0.0, value)) for value in values]


# --- 2. colour -----------------------------------------------------------------------------------------------------

Matrix = list[list[float]]
_IDENTITY: Matrix = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def _colour_matrix(recipe: Recipe) -> Matrix:
    """sepia, then saturate, then hue-rotate, then grayscale, as one matrix (W3C Filter Effects 1, section 9)."""
    matrix = _IDENTITY
    for step in (
        _sepia(recipe.sepia),
        _saturate(recipe.saturate),
        _hue_rotate(recipe.hue_rotate),
        _grayscale(recipe.grayscale),
    ):
        matrix = [[sum(step[r][k] * matrix[k][c] for k in range(3)) for c in range(3)] for r in range(3)]
    return matrix


def _sepia(amount: float) -> Matrix:
    k = 1 - min(1.0, amount)
    return [
        [0.393 + 0.607 * k, 0.769 - 0.769 * k, 0.189 - 0.189 * k],
        [0.349 - 0.349 * k, 0.686 + 0.314 * k, 0.168 - 0.168 * k],
        [0.272 - 0.272 * k, 0.534 - 0.534 * k, 0.131 + 0.869 * k],
    ]


def _saturate(s: float) -> Matrix:
    return [
        [0.213 + 0.787 * s, 0.715 - 0.715 * s, 0.072 - 0.072 * s],
        [0.213 - 0.213 * s, 0.715 + 0.285 * s, 0.072 - 0.072 * s],
        [0.213 - 0.213 * s, 0.715 - 0.715 * s, 0.072 + 0.928 * s],
    ]


def _hue_rotate(degrees: float) -> Matrix:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [
        [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
        [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
        [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
    ]


def _grayscale(amount: float) -> Matrix:
    k = 1 - min(1.0, amount)
    return [
        [0.2126 + 0.7874 * k, 0.7152 - 0.7152 * k, 0.0722 - 0.0722 * k],
        [0.2126 - 0.2126 * k, 0.7152 + 0.2848 * k, 0.0722 - 0.0722 * k],
        [0.2126 - 0.2126 * k, 0.7152 - 0.7152 * k, 0.0722 + 0.9278 * k],
    ]


# --- 3. overlays: the W3C Compositing and Blending formulas for a backdrop b and a flat colour c, on 0-1 ---------
# With a flat colour each channel's result depends on that channel alone, so the overlays fold into a table too.


def _soft_light(b: float, c: float) -> float:
    if c <= 0.5:
        return b - (1 - 2 * c) * b * (1 - b)
    d = ((16 * b - 12) * b + 4) * b if b <= 0.25 else math.sqrt(b)
    return b + (2 * c - 1) * (d - b)


def _color_dodge(b: float, c: float) -> float:
    if b == 0:
        return 0.0
    return 1.0 if c >= 1 else min(1.0, b / (1 - c))


BLENDS = {
    "normal": lambda b, c: c,
    "multiply": lambda b, c: b * c,
    "screen": lambda b, c: b + c - b * c,
    "overlay": lambda b, c: 2 * b * c if b <= 0.5 else 1 - 2 * (1 - b) * (1 - c),
    "darken": min,
    "lighten": max,
    "color-dodge": _color_dodge,
    "soft-light": _soft_light,
    "exclusion": lambda b, c: b + c - 2 * b * c,
}


@functools.cache
def _overlay_tables(recipe: Recipe) -> list[list[int]]:
    """Per channel, each value 0-255 after every overlay in turn, mixed in at its opacity."""
    tables = []
    for channel in range(3):
        row = []
        for value in range(256):
            b = value / 255
            for overlay in recipe.overlays:
                c = overlay.color[channel] / 255
                b = b * (1 - overlay.opacity) + BLENDS[overlay.blend](b, c) * overlay.opacity
            row.append(_clip(b * 255))
        tables.append(row)
    return tables


# --- 4. vignette ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _vignette_mask(width: int, height: int, strength: float) -> pyvips.Image:
    """1 in the middle, falling smoothly to 1 - strength at the corners; relative to the size, so a vignette
    looks the same on every rendition. Kept for the last few sizes: most photos come in a handful of aspect
    ratios, so most 1080 images share a size, and making the mask costs more than applying it."""
    xy = pyvips.Image.xyz(width, height)
    dx = (xy[0] - (width - 1) / 2) / (width / 2)
    dy = (xy[1] - (height - 1) / 2) / (height / 2)
    distance = ((dx * dx + dy * dy) / 2) ** 0.5  # 0 in the middle, 1 in the corners
    falloff = (distance - 0.35) / 0.65
    falloff = (falloff < 0).ifthenelse(0.0, falloff)
    return (1 - falloff * falloff * strength).copy_memory()
