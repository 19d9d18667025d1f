"""Filters: each look against its committed golden image, its CSS preview against the CSS spec, and its effect.

The goldens are tests/golden/<filter>.webp (lossless), each filter applied to tests/golden/source.jpg. A change
to a look must be deliberate: regenerate them, look at the contact sheet, commit them with the change.

    python -m tests.test_filters --regenerate     rewrite tests/golden/*.webp and tests/artifacts/filters.png
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path

import pytest
import pyvips

from app.media.filters import BLENDS, FILTERS, Recipe, UnknownFilter, apply_filter

GOLDEN = Path(__file__).resolve().parent / "golden"
SOURCE = GOLDEN / "source.jpg"
SHEET = Path(__file__).resolve().parent / "artifacts" / "filters.png"
MIN_PSNR_DB = 38.0
LOOKS = [name for name in FILTERS if name != "normal"]


def source() -> pyvips.Image:
    return pyvips.Image.new_from_file(str(SOURCE)).copy_memory()


def psnr(a: pyvips.Image, b: pyvips.Image) -> float:
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    mse = ((a.cast("float") - b.cast("float")) ** 2).avg()
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_the_catalogue_has_the_instagram_looks():
    assert set(FILTERS) >= {
        "normal", "clarendon", "gingham", "juno", "lark", "ludwig",
        "moon", "reyes", "slumber", "valencia", "inkwell",
    }  # fmt: skip


def test_normal_leaves_the_photo_alone():
    image = source()
    assert psnr(apply_filter(image, "normal"), image) == math.inf


@pytest.mark.parametrize("name", LOOKS)
def test_each_look_matches_its_golden_image(name):
    out = apply_filter(source(), name)
    assert (out.bands, out.format, out.interpretation) == (3, "uchar", "srgb")
    golden = pyvips.Image.new_from_file(str(GOLDEN / f"{name}.webp"))
    assert psnr(out, golden) >= MIN_PSNR_DB, f"{name} changed; if on purpose, regenerate the goldens"


@pytest.mark.parametrize(
    "change",
    [{"contrast": 0.1}, {"saturate": 0.15}, {"vignette": 0.2}, {"brightness": 0.05}],
    ids=lambda change: next(iter(change)),
)
def test_a_small_change_to_a_recipe_fails_the_golden_check(change, monkeypatch):
    (field, step) = next(iter(change.items()))
    recipe = FILTERS["clarendon"]
    monkeypatch.setitem(FILTERS, "clarendon", dataclasses.replace(recipe, **{field: getattr(recipe, field) + step}))
    golden = pyvips.Image.new_from_file(str(GOLDEN / "clarendon.webp"))
    assert psnr(apply_filter(source(), "clarendon"), golden) < MIN_PSNR_DB


def test_every_look_is_visibly_its_own():
    image = source()
    outputs = {name: apply_filter(image, name).copy_memory() for name in FILTERS}
    for i, a in enumerate(FILTERS):
        for b in list(FILTERS)[i + 1 :]:
            assert psnr(outputs[a], outputs[b]) < 30, f"{a} and {b} look the same"


def test_black_and_white_looks_have_no_colour():
    for name in ("moon", "inkwell"):
        out = apply_filter(source(), name)
        assert (out[0] - out[1]).abs().max() <= 1 and (out[1] - out[2]).abs().max() <= 1


def test_a_vignette_darkens_the_corners_and_not_the_middle():
    flat = pyvips.Image.black(300, 200).new_from_image([128, 128, 128]).cast("uchar").copy(interpretation="srgb")
    with_vignette = apply_filter(flat, "ludwig")
    without = _apply(flat, dataclasses.replace(FILTERS["ludwig"], vignette=0.0))
    ratio_corner = with_vignette.crop(0, 0, 10, 10).avg() / without.crop(0, 0, 10, 10).avg()
    ratio_middle = with_vignette.crop(145, 95, 10, 10).avg() / without.crop(145, 95, 10, 10).avg()
    assert ratio_corner < 0.8
    assert ratio_middle == pytest.approx(1.0, abs=0.01)


def test_an_unknown_filter_is_refused():
    with pytest.raises(UnknownFilter):
        apply_filter(source(), "sepia-deluxe")


# --- the CSS preview -----------------------------------------------------------------------------------------------

CSS_FUNCTION = re.compile(
    r"(brightness|contrast|saturate|sepia|grayscale)\((-?\d+(\.\d+)?)\)|hue-rotate\((-?\d+(\.\d+)?)deg\)"
)


@pytest.mark.parametrize("name", list(FILTERS))
def test_css_is_a_list_of_css_filter_functions(name):
    css = FILTERS[name].css
    if name == "normal":
        assert css == "none"
        return
    assert all(CSS_FUNCTION.fullmatch(part) for part in css.split()), css
    for background, blend in FILTERS[name].css_layers:
        assert re.fullmatch(r"rgba\(\d+, \d+, \d+, [\d.]+\)", background)
        assert blend in BLENDS


def css_reference(css: str, rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """The W3C Filter Effects definition of a `filter` value, applied to one colour, clamping after each step."""
    r, g, b = (channel / 255 for channel in rgb)
    for name, value in re.findall(r"([a-z-]+)\((-?[\d.]+)(?:deg)?\)", css):
        amount = float(value)
        if name == "brightness":
            r, g, b = r * amount, g * amount, b * amount
        elif name == "contrast":
            r, g, b = ((v - 0.5) * amount + 0.5 for v in (r, g, b))
        else:
            matrix = css_matrix(name, amount)
            r, g, b = (row[0] * r + row[1] * g + row[2] * b for row in matrix)
        r, g, b = (min(1.0, max(0.0, v)) for v in (r, g, b))
    return r * 255, g * 255, b * 255


def css_matrix(name: str, amount: float) -> list[list[float]]:
    if name == "hue-rotate":
        c, s = math.cos(math.radians(amount)), math.sin(math.radians(amount))
        return [
            [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
            [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
            [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
        ]
    k = 1 - min(1.0, amount)
    if name == "saturate":
        s = amount
        return [
            [0.213 + 0.787 * s, 0.715 - 0.715 * s, 0.072 - 0.072 * s],
            [0.213 - 0.213 * s, 0.715 + 0.285 * s, 0.072 - 0.072 * s],
            [0.213 - 0.213 * s, 0.715 - 0.715 * s, 0.072 + 0.928 * s],
        ]
    if name == "sepia":
        return [
            [0.393 + 0.607 * k, 0.769 - 0.769 * k, 0.189 - 0.189 * k],
            [0.349 - 0.349 * k, 0.686 + 0.314 * k, 0.168 - 0.168 * k],
            [0.272 - 0.272 * k, 0.534 - 0.534 * k, 0.131 + 0.869 * k],
        ]
    assert name == "grayscale"
    return [
        [0.2126 + 0.7874 * k, 0.7152 - 0.7152 * k, 0.0722 - 0.0722 * k],
        [0.2126 - 0.2126 * k, 0.7152 + 0.2848 * k, 0.0722 - 0.0722 * k],
        [0.2126 - 0.2126 * k, 0.7152 - 0.7152 * k, 0.0722 + 0.9278 * k],
    ]


SWATCHES = [(200, 40, 40), (40, 170, 60), (50, 70, 200), (235, 210, 60), (128, 128, 128), (30, 30, 30), (230, 225, 220)]


@pytest.mark.parametrize("name", LOOKS)
def test_the_css_preview_computes_what_the_interpreter_does_without_curves_and_layers(name):
    """The CSS preview leaves out what CSS `filter` cannot say (curves, overlays, vignette); with those removed
    from the recipe, the interpreter and a browser following the spec give the same colours."""
    recipe = dataclasses.replace(FILTERS[name], curve=(), red=(), green=(), blue=(), overlays=(), vignette=0.0)
    tiles = [pyvips.Image.black(4, 4).new_from_image(list(colour)) for colour in SWATCHES]
    strip = pyvips.Image.arrayjoin(tiles, across=len(tiles)).cast("uchar").copy(interpretation="srgb")
    out = _apply(strip, recipe)
    for i, colour in enumerate(SWATCHES):
        got = out.getpoint(i * 4 + 2, 2)
        want = css_reference(recipe.css, colour)
        assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= 3, (name, colour, got, want)


def test_blend_formulas_follow_the_compositing_spec():
    # Identity colours of each mode, and two worked values.
    for b in (0.0, 0.2, 0.7, 1.0):
        assert BLENDS["multiply"](b, 1.0) == pytest.approx(b)
        assert BLENDS["screen"](b, 0.0) == pytest.approx(b)
        assert BLENDS["soft-light"](b, 0.5) == pytest.approx(b)
        assert BLENDS["overlay"](b, 0.5) == pytest.approx(b)
        assert BLENDS["exclusion"](b, 0.0) == pytest.approx(b)
    assert BLENDS["overlay"](0.25, 0.8) == pytest.approx(0.4)
    assert BLENDS["color-dodge"](0.3, 0.5) == pytest.approx(0.6)


def _apply(image: pyvips.Image, recipe: Recipe) -> pyvips.Image:
    """apply_filter with a recipe that is not in the catalogue."""
    FILTERS["_test"] = dataclasses.replace(recipe, name="_test")
    try:
        return apply_filter(image, "_test").copy_memory()
    finally:
        del FILTERS["_test"]


# --- regenerating the goldens --------------------------------------------------------------------------------------


def regenerate() -> None:
    image = source()
    tiles = []
    for name in FILTERS:
        out = apply_filter(image, name).copy_memory()
        if name != "normal":
            out.webpsave(str(GOLDEN / f"{name}.webp"), lossless=True, effort=6, keep="none")
        label = pyvips.Image.text(name, dpi=120).cast("uchar")
        label = label.embed(6, 4, out.width, label.height + 8).invert()
        tiles.append(out.join(label.bandjoin([label, label]).copy(interpretation="srgb"), "vertical"))
    SHEET.parent.mkdir(exist_ok=True)
    pyvips.Image.arrayjoin(tiles, across=4, shim=8, background=255).write_to_file(str(SHEET))
    total = sum(path.stat().st_size for path in GOLDEN.iterdir())
    print(f"wrote {len(FILTERS) - 1} goldens to {GOLDEN} ({total / 1e6:.2f} MB with the source); look at {SHEET}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(__doc__)
    regenerate()
