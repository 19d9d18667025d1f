"""Hardened image decoding: formats told from the bytes, sizes checked from the header first,
and libvips limited to the loaders Pinhole accepts."""

from __future__ import annotations

import pyvips

from app.errors import UserError

# Accepted formats, told from the file's first bytes (never its name or Content-Type).
ACCEPTED = "JPEG, PNG, WebP, GIF, HEIC/HEIF or AVIF"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}

# libvips loaders allowed to run; everything else (SVG, PDF, matrix, FITS, ...) stays blocked.
ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadHeif",
)


class ImageRejected(UserError):
    status = 422


def harden_vips() -> None:
    """Block libvips' untrusted operations and every loader not in ALLOWED_LOADERS; assert it."""
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for loader in ALLOWED_LOADERS:
        pyvips.operation_block_set(loader, False)
    try:
        pyvips.Image.new_from_buffer(b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', "")
    except pyvips.Error:
        return
    raise RuntimeError("libvips still loads SVG after blocking: refusing to start")


def sniff(data: bytes) -> str | None:
    """The image format named by the file's magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "avif" if data[8:12] in (b"avif", b"avis") else "heif"
    return None


def open_checked(data: bytes, max_pixels: int) -> pyvips.Image:
    """Open an upload lazily, reading only its header; refuse what is not a photo we accept."""
    if not data:
        raise ImageRejected("The file is empty.")
    if sniff(data) is None:
        raise ImageRejected(f"That file is not a photo Pinhole can read. Use {ACCEPTED}.")
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    except pyvips.Error:
        raise ImageRejected("That photo is damaged or incomplete and cannot be read.") from None
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageRejected(
            f"That photo is {image.width}×{image.height} pixels; the limit is {max_pixels // 1_000_000} megapixels."
        )
    return image


def square_webp(data: bytes, size: int, max_pixels: int) -> bytes:
    """An upright sRGB square crop (smart crop) as WebP with no metadata at all."""
    open_checked(data, max_pixels)
    try:
        image = pyvips.Image.thumbnail_buffer(data, size, height=size, crop="attention", fail_on="error")
        if image.interpretation != "srgb":
            image = image.colourspace("srgb")
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.webpsave_buffer(Q=82, keep="none")
    except pyvips.Error:
        raise ImageRejected("That photo is damaged or incomplete and cannot be read.") from None
