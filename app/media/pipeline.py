"""The photo pipeline: one upload's bytes in, its stored renditions out. Pure: no storage, web or queue here;
a queue task calls `process_photo` (never a request: a 24 MP JPEG takes about 0.2 s of CPU, see
scaling/RESULTS.md).

    photo = process_photo(data, filter_name="clarendon", max_pixels=..., max_bytes=...)
    for rendition in photo.renditions:   # 1080, 640, 320 and 150sq, each as WebP then JPEG (and AVIF if asked)
        store(rendition.data, rendition.content_type)

Steps, in order:
1. Checks that need no decoding (`images.open_upload`): byte size, format from the magic bytes, the pixel count
   the header declares. Camera facts come from the header's EXIF block, through a whitelist.
2. Decode once, straight to at most 1080 on the long edge: libvips `thumbnail` shrinks JPEGs while decoding,
   turns the photo upright by its EXIF orientation and converts CMYK and ICC-profiled photos to sRGB. HEIC
   (HEVC), which libvips here cannot decode, goes through pi-heif first (`images.decode_heic`).
3. The filter, once, on that 1080 image: a look costs the same few milliseconds whatever the upload's size, and
   every smaller rendition shows exactly the same look because it is derived from the filtered image.
4. The 640, 320 and 150 square (smart crop, `attention`) are shrunk from the filtered 1080 in memory; nothing
   is decoded twice and nothing is ever enlarged. Every file is encoded with `keep="none"`: no EXIF, GPS, XMP,
   IPTC or ICC block leaves here.
5. A BlurHash (from a 32-pixel thumbnail) and a dominant colour (64 pixels) of the filtered image.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pyvips
from PIL import Image as PILImage

from app.media import blurhash
from app.media.filters import FILTERS, apply_filter
from app.media.images import ImageRejected, decode_heic, harden_vips, open_upload

MAX_PIXELS = 90_000_000
MAX_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class Size:
    name: str
    edge: int  # the long edge, or the side of a square
    square: bool = False


SIZES = (Size("1080", 1080), Size("640", 640), Size("320", 320), Size("150sq", 150, square=True))

# Encoder settings per format: (save operation, options, content type). Listed in the order renditions come out.
ENCODINGS = {
    "webp": ("webpsave_buffer", {"Q": 80, "effort": 4}, "image/webp"),
    "jpeg": ("jpegsave_buffer", {"Q": 82, "optimize_coding": True}, "image/jpeg"),
    "avif": ("heifsave_buffer", {"Q": 55, "compression": "av1", "effort": 2}, "image/avif"),
}


@dataclass(frozen=True)
class Rendition:
    name: str  # "1080", "640", "320" or "150sq"
    format: str  # "webp", "jpeg" or "avif"
    width: int
    height: int
    data: bytes
    content_type: str


@dataclass(frozen=True)
class ProcessedPhoto:
    width: int  # the upload's full size, upright
    height: int
    renditions: list[Rendition]
    blurhash: str
    dominant_color: str  # "#rrggbb"
    camera: dict[str, str | int | float]


def process_photo(
    data: bytes,
    *,
    filter_name: str = "normal",
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
    avif: bool = False,
) -> ProcessedPhoto:
    """Every rendition of one upload, upright, in sRGB, filtered and stripped of metadata.

    Raises ImageRejected (a UserError with the message to show) for anything that is not a photo Pinhole
    accepts; the same bytes always give byte-identical results."""
    _harden_once()
    if filter_name not in FILTERS:
        raise ImageRejected(f"Unknown filter; choose one of {', '.join(FILTERS)}.", field="filter")
    header = open_upload(data, max_pixels=max_pixels, max_bytes=max_bytes)
    try:
        if _field(header, "heif-compression") == "hevc":
            full, exif = decode_heic(data)
            width, height = full.width, full.height
            image = full.thumbnail_image(SIZES[0].edge, height=SIZES[0].edge, size="down", **_colour_options(full))
        else:
            exif = _field(header, "exif-data")
            width, height = header.width, header.height
            if (_field(header, "orientation") or 1) >= 5:  # stored on its side
                width, height = height, width
            image = pyvips.Image.thumbnail_buffer(
                data, SIZES[0].edge, height=SIZES[0].edge, size="down", **_colour_options(header)
            )
        # Decoding and the filter run as one libvips pipeline, kept in memory once: every size is derived from it.
        image = apply_filter(_plain_srgb(image), filter_name).copy_memory()
        formats = ["webp", "jpeg"] + (["avif"] if avif else [])
        sized = dict(_resized(image))
        renditions = [_encode(name, fmt, resized) for name, resized in sized.items() for fmt in formats]
        small = sized["320"].thumbnail_image(64, height=64, size="down").copy_memory()
        tiny = small.thumbnail_image(32, height=32, size="down")
        small_pixels, tiny_pixels = bytes(small.write_to_memory()), bytes(tiny.write_to_memory())
    except pyvips.Error:
        raise ImageRejected("That photo is damaged or incomplete and cannot be read.") from None
    components = (4, 3) if tiny.width >= tiny.height else (3, 4)
    return ProcessedPhoto(
        width=width,
        height=height,
        renditions=renditions,
        blurhash=blurhash.encode(tiny_pixels, tiny.width, tiny.height, *components),
        dominant_color=dominant_color(small_pixels),
        camera=camera_facts(exif),
    )


_harden_once = functools.cache(harden_vips)


def _field(image: pyvips.Image, name: str):
    return image.get(name) if name in image.get_fields() else None


def _colour_options(image: pyvips.Image) -> dict[str, str]:
    """Convert to sRGB through the embedded ICC profile when there is one (Display P3 from phones, Adobe RGB,
    CMYK); without one libvips assumes sRGB, and CMYK falls back to a built-in CMYK profile."""
    return {"output_profile": "srgb"} if _field(image, "icc-profile-data") else {}


def _plain_srgb(image: pyvips.Image) -> pyvips.Image:
    """Three 8-bit sRGB bands: grey and 16-bit made sRGB, transparency flattened onto white."""
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image


def _resized(image: pyvips.Image):
    """(name, image) for each size, shrunk from the filtered 1080 image; never enlarged."""
    for size in SIZES:
        if size.square:
            side = min(size.edge, image.width, image.height)
            yield size.name, image.thumbnail_image(side, height=side, crop="attention", size="down").copy_memory()
        elif max(image.width, image.height) <= size.edge:
            yield size.name, image
        else:
            yield size.name, image.thumbnail_image(size.edge, height=size.edge, size="down").copy_memory()


def _encode(name: str, fmt: str, image: pyvips.Image) -> Rendition:
    operation, options, content_type = ENCODINGS[fmt]
    data = getattr(image, operation)(keep="none", **options)
    return Rendition(name, fmt, image.width, image.height, data, content_type)


def dominant_color(rgb: bytes) -> str:
    """The mean of the most common colour bucket among packed RGB pixels, as #rrggbb. Buckets are coarse
    (3 bits a channel) so that the winner does not flip between near-identical versions of a photo."""
    pixels = [rgb[i : i + 3] for i in range(0, len(rgb), 3)]
    buckets = Counter((r >> 5, g >> 5, b >> 5) for r, g, b in pixels)
    top = max(buckets, key=lambda bucket: (buckets[bucket], bucket))
    members = [pixel for pixel in pixels if (pixel[0] >> 5, pixel[1] >> 5, pixel[2] >> 5) == top]
    return "#" + "".join(f"{round(sum(p[c] for p in members) / len(members)):02x}" for c in range(3))


# --- Camera facts: a whitelist of EXIF tags, as data. GPS (IFD 0x8825) is never read. ---------------------------

_IFD0, _EXIF_IFD = None, 0x8769


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = " ".join(value.replace("\x00", " ").split())[:64]
    return value or None


def _number(low: float, high: float, digits: int = 1):
    def convert(value) -> float | None:
        try:
            number = float(value[0] if isinstance(value, tuple) else value)
        except (TypeError, ValueError, ZeroDivisionError, IndexError):
            return None
        return round(number, digits) if math.isfinite(number) and low <= number <= high else None

    return convert


def _shutter(value) -> str | None:
    seconds = _number(1e-6, 3600, digits=6)(value)
    if seconds is None:
        return None
    return f"1/{round(1 / seconds)}" if seconds < 0.5 else f"{seconds:g}"


def _iso(value) -> int | None:
    number = _number(1, 1_000_000, digits=0)(value)
    return None if number is None else int(number)


def _taken_at(value) -> str | None:
    text = _text(value)
    try:
        return datetime.strptime(text or "", "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


# (key in the result, IFD, tag, converter): Make, Model, LensModel, FocalLength, FNumber, ExposureTime,
# ISOSpeedRatings, DateTimeOriginal.
CAMERA_FACTS = (
    ("make", _IFD0, 0x010F, _text),
    ("model", _IFD0, 0x0110, _text),
    ("lens", _EXIF_IFD, 0xA434, _text),
    ("focal_length_mm", _EXIF_IFD, 0x920A, _number(0.1, 10_000)),
    ("aperture", _EXIF_IFD, 0x829D, _number(0.5, 256)),
    ("shutter", _EXIF_IFD, 0x829A, _shutter),
    ("iso", _EXIF_IFD, 0x8827, _iso),
    ("taken_at", _EXIF_IFD, 0x9003, _taken_at),
)


def camera_facts(exif: bytes | None) -> dict[str, str | int | float]:
    """The whitelisted facts in a raw EXIF block ("Exif\\0\\0" and a TIFF header); absent or broken ones left out."""
    if not exif:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about every malformed entry
        try:
            tags = PILImage.Exif()
            tags.load(exif)
            ifds = {_IFD0: dict(tags), _EXIF_IFD: dict(tags.get_ifd(_EXIF_IFD))}
        except Exception:  # any malformed EXIF just means no facts
            return {}
    facts = {}
    for key, ifd, tag, convert in CAMERA_FACTS:
        if tag in ifds[ifd]:
            value = convert(ifds[ifd][tag])
            if value is not None:
                facts[key] = value
    return facts
