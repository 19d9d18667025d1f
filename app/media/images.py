"""Hardened image decoding: formats told from the bytes, sizes checked from the header first,
and libvips limited to the loaders Pinhole accepts."""

from __future__ import annotations

import struct

import pi_heif
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


# --- Photo uploads: the checks before decoding, and HEIC, which libvips here cannot decode --------------------------


def gif_extent(data: bytes) -> tuple[int, int]:
    """The width and height a GIF's logical screen and every frame placed on it reach, read from the block
    structure without decoding: a bomb may declare a small screen and place a frame at (65535, 65535)."""
    width, height = struct.unpack_from("<HH", data, 6)
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # skip the global colour table
    while pos < len(data):
        block = data[pos]
        if block == 0x2C:  # image descriptor: left, top, width, height, flags
            if pos + 10 > len(data):
                break
            left, top, frame_width, frame_height, frame_flags = struct.unpack_from("<HHHHB", data, pos + 1)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            pos += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            pos = _skip_gif_sub_blocks(data, pos + 1)  # after the LZW minimum code size byte
        elif block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_gif_sub_blocks(data, pos + 2)
        else:  # the trailer, or junk after the last frame
            break
    return width, height


def _skip_gif_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def open_upload(data: bytes, *, max_pixels: int, max_bytes: int) -> pyvips.Image:
    """The upload's header as a lazy libvips image, after every check that needs no decoding: size in bytes,
    format from the magic bytes, and the pixel count the header declares (for a GIF, every frame's extent)."""
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(f"That photo is larger than {max_bytes / 1024 / 1024:g} MB.", status=413)
    kind = sniff(data)
    if kind is None:
        raise ImageRejected(f"That file is not a photo Pinhole can read. Use {ACCEPTED}.")
    if kind == "gif":
        if len(data) < 13:  # shorter than a GIF's header and logical screen descriptor
            raise ImageRejected("That photo is damaged or incomplete and cannot be read.")
        width, height = gif_extent(data)
        _check_pixels(width, height, max_pixels)
    try:
        header = pyvips.Image.new_from_buffer(data, "", access="sequential")
    except pyvips.Error:
        raise ImageRejected("That photo is damaged or incomplete and cannot be read.") from None
    _check_pixels(header.width, header.height, max_pixels)
    return header


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            f"That photo is {width}×{height} pixels; the limit is {max_pixels / 1_000_000:g} megapixels."
        )


_HEIC_BANDS = {"L": 1, "RGB": 3, "RGBA": 4}


def decode_heic(data: bytes) -> tuple[pyvips.Image, bytes | None]:
    """Decode an HEVC-coded HEIF with pi-heif (libheif + libde265; pyvips-binary's libheif has no HEVC decoder).

    Returns the upright 8-bit pixels as a libvips image carrying the file's ICC profile, and the raw EXIF block.
    libheif applies the container's rotation and mirroring (irot/imir) while decoding; HEIF says those win over
    the EXIF orientation, so the EXIF orientation is not applied again."""
    try:
        heif = pi_heif.open_heif(data, convert_hdr_to_8bit=True)
        bands = _HEIC_BANDS.get(heif.mode)
        if bands is None:
            raise ImageRejected(f"That HEIC photo uses a pixel layout ({heif.mode}) Pinhole cannot read.")
        width, height = heif.size
        # A copy: heif.data is a view into memory that pi-heif frees along with `heif`.
        pixels, stride = bytes(heif.data), heif.stride
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError):
        raise ImageRejected("That photo is damaged or incomplete and cannot be read.") from None
    row = width * bands
    if stride != row:
        pixels = b"".join(pixels[y * stride : y * stride + row] for y in range(height))
    image = pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar")
    image = image.copy(interpretation="b-w" if bands == 1 else "srgb")
    icc = heif.info.get("icc_profile")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return image, heif.info.get("exif")
