"""The photo pipeline on real files: what is accepted, what is refused before decoding, what the renditions hold.

Uses ../shared/testdata/images (good/, bad/, orientation/) and files made here: bombs, polyglots, a Display P3
photo, transparency, 16-bit.
"""

from __future__ import annotations

import functools
import io
import json
import random
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import pytest
import pyvips

from app.media import blurhash
from app.media.images import ImageRejected, harden_vips
from app.media.pipeline import SIZES, ProcessedPhoto, camera_facts, dominant_color, process_photo
from tests.conftest import ROOT, TESTDATA

GOOD = sorted((TESTDATA / "good").iterdir())
BAD = sorted((TESTDATA / "bad").iterdir())
ORIENTATION = TESTDATA / "orientation"
NAMES = [size.name for size in SIZES]


@functools.cache
def processed(path, **options) -> ProcessedPhoto:
    return process_photo(path.read_bytes(), **options)


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "").copy_memory()


def mean_abs_difference(a: pyvips.Image, b: pyvips.Image) -> float:
    return (a.cast("float") - b.cast("float")).abs().avg()


def srgb(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return pyvips.Image.black(width, height).new_from_image(colour).cast("uchar").copy(interpretation="srgb")


# --- what is accepted, and what comes out -----------------------------------------------------------------------


@pytest.mark.parametrize("path", GOOD, ids=lambda path: path.name)
def test_every_good_file_gives_every_rendition_in_webp_and_jpeg(path):
    photo = processed(path)
    assert [(r.name, r.format) for r in photo.renditions] == [(n, f) for n in NAMES for f in ("webp", "jpeg")]
    for rendition in photo.renditions:
        image = decode(rendition.data)
        assert (image.width, image.height) == (rendition.width, rendition.height)
        assert image.bands == 3 and image.format == "uchar"
        if rendition.format == "webp":
            assert rendition.data[:4] == b"RIFF" and rendition.data[8:12] == b"WEBP"
            assert rendition.content_type == "image/webp"
        else:
            assert rendition.data[:3] == b"\xff\xd8\xff" and rendition.content_type == "image/jpeg"


@pytest.mark.parametrize("path", GOOD, ids=lambda path: path.name)
def test_renditions_fit_their_size_and_never_exceed_the_source(path):
    photo = processed(path)
    for rendition in photo.renditions:
        size = SIZES[NAMES.index(rendition.name)]
        assert rendition.width <= photo.width and rendition.height <= photo.height
        if size.square:
            side = min(size.edge, photo.width, photo.height)
            assert (rendition.width, rendition.height) == (side, side)
        else:
            assert max(rendition.width, rendition.height) == min(size.edge, max(photo.width, photo.height))


METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data", "jpeg-thumbnail-data")
METADATA_BYTES = (b"Exif", b"EXIF", b"GPS", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"ICC_PROFILE", b"ICCP")


@pytest.mark.parametrize("path", GOOD + [ORIENTATION / "Landscape_6.jpg"], ids=lambda path: path.name)
def test_no_rendition_carries_metadata(path):
    for rendition in processed(path, avif=True).renditions:
        fields = decode(rendition.data).get_fields()
        assert not [field for field in fields if field in METADATA_FIELDS or field.startswith(("exif-", "xmp", "iptc"))]
        assert not [marker for marker in METADATA_BYTES if marker in rendition.data], rendition.name


def test_the_gps_photo_has_gps_and_its_renditions_do_not():
    data = (TESTDATA / "good" / "exif_gps.jpg").read_bytes()
    assert any("GPSLatitude" in field for field in pyvips.Image.new_from_buffer(data, "").get_fields())
    photo = process_photo(data)
    assert all(b"GPS" not in rendition.data for rendition in photo.renditions)
    assert not any("gps" in key.lower() for key in photo.camera)


def test_avif_renditions_when_asked():
    photo = processed(TESTDATA / "good" / "flower.jpg", avif=True)
    avifs = [r for r in photo.renditions if r.format == "avif"]
    assert [r.name for r in avifs] == NAMES
    for rendition in avifs:
        assert rendition.data[4:12] == b"ftypavif" and rendition.content_type == "image/avif"
        assert (decode(rendition.data).width, decode(rendition.data).height) == (rendition.width, rendition.height)


def test_processing_is_deterministic():
    data = (ORIENTATION / "Portrait_6.jpg").read_bytes()
    first, second = process_photo(data, filter_name="ludwig"), process_photo(data, filter_name="ludwig")
    assert [r.data for r in first.renditions] == [r.data for r in second.renditions]
    assert (first.blurhash, first.dominant_color, first.camera) == (
        second.blurhash,
        second.dominant_color,
        second.camera,
    )


def test_the_filter_is_applied_to_every_rendition():
    path = TESTDATA / "good" / "flower.jpg"
    plain, inked = processed(path), processed(path, filter_name="inkwell")
    for before, after in zip(plain.renditions, inked.renditions, strict=True):
        colour, grey = decode(before.data), decode(after.data)
        assert (grey[0] - grey[2]).abs().avg() < 2 < (colour[0] - colour[2]).abs().avg(), after.name


def test_an_unknown_filter_is_a_clear_refusal():
    with pytest.raises(ImageRejected, match="Unknown filter; choose one of normal, clarendon") as refused:
        process_photo((TESTDATA / "good" / "hopper.jpg").read_bytes(), filter_name="../../etc")
    assert refused.value.field == "filter"


# --- upright -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["Landscape_3", "Landscape_6", "Landscape_8", "Portrait_6"])
def test_every_rendition_is_upright(stem):
    reference_stem = stem.split("_")[0] + "_1"
    photo, reference = processed(ORIENTATION / f"{stem}.jpg"), processed(ORIENTATION / f"{reference_stem}.jpg")
    assert (photo.width, photo.height) == ((1800, 1200) if stem.startswith("Landscape") else (1200, 1800))
    for rendition, expected in zip(photo.renditions, reference.renditions, strict=True):
        assert (rendition.width, rendition.height) == (expected.width, expected.height)
        if not rendition.name.endswith("sq"):
            assert (rendition.width > rendition.height) == stem.startswith("Landscape")
        # Smart crop may settle a pixel or two apart, so the square is compared at the same tolerance.
        assert mean_abs_difference(decode(rendition.data), decode(expected.data)) < 6, rendition.name


def test_a_rotated_photo_is_not_its_mirror_image():
    """The upright test must be able to fail: a wrongly rotated photo differs from the reference a lot."""
    upright = decode(processed(ORIENTATION / "Landscape_1.jpg").renditions[0].data)
    assert mean_abs_difference(upright, upright.rot180()) > 20
    assert mean_abs_difference(upright, upright.fliphor()) > 20


# --- colour --------------------------------------------------------------------------------------------------------

SWATCHES = [[220, 30, 30], [30, 200, 40], [40, 60, 220], [240, 200, 20], [128, 128, 128], [200, 40, 200]]


def test_an_icc_profiled_photo_is_converted_to_srgb():
    original = pyvips.Image.arrayjoin([srgb(100, 150, colour) for colour in SWATCHES], across=3)
    display_p3 = original.icc_transform("p3", input_profile="srgb").jpegsave_buffer(Q=95)
    assert "icc-profile-data" in pyvips.Image.new_from_buffer(display_p3, "").get_fields()
    out = decode(process_photo(display_p3).renditions[0].data)
    assert mean_abs_difference(out, original) < 3
    # ... where reading the P3 numbers as if they were sRGB would be visibly off:
    assert mean_abs_difference(pyvips.Image.new_from_buffer(display_p3, ""), original) > 10


def test_a_cmyk_photo_comes_out_rgb_with_its_colours():
    photo = processed(TESTDATA / "good" / "pil_sample_cmyk.jpg")
    out = decode(photo.renditions[0].data)
    red_bar = out.crop(0, 0, 12, 3).stats()  # the file's red bar, top left
    red, green, blue = (red_bar(4, band + 1)[0] for band in range(3))  # column 4: the mean
    assert red > 180 and green < 90 and blue < 90


def test_heic_decodes_through_pi_heif_and_matches_the_same_photo_as_jpeg():
    heic, jpeg = processed(TESTDATA / "good" / "hopper.heif"), processed(TESTDATA / "good" / "hopper.jpg")
    assert (heic.width, heic.height) == (128, 128)
    assert mean_abs_difference(decode(heic.renditions[0].data), decode(jpeg.renditions[0].data)) < 8


def test_an_animated_gif_gives_its_first_frame():
    frames = srgb(60, 40, [220, 20, 20]).join(srgb(60, 40, [20, 20, 220]), "vertical")  # red, then blue
    frames.set_type(pyvips.GValue.gint_type, "page-height", 40)
    gif = frames.gifsave_buffer()
    assert pyvips.Image.new_from_buffer(gif, "").get("n-pages") == 2
    out = decode(process_photo(gif).renditions[0].data)
    assert (out.width, out.height) == (60, 40)
    red, green, blue = (out[band].avg() for band in range(3))
    assert red > 180 and blue < 60


def test_transparency_is_flattened_onto_white():
    image = srgb(200, 100, [200, 20, 20]).bandjoin_const(0).copy(interpretation="srgb")  # fully transparent
    image = image.insert(srgb(100, 100, [200, 20, 20]).bandjoin_const(255), 0, 0)  # left half opaque red
    out = decode(process_photo(image.pngsave_buffer()).renditions[0].data)
    assert out.crop(150, 40, 20, 20).min() > 250  # transparent: white
    assert out.crop(20, 40, 20, 20).avg() < 100  # opaque: still red


def test_a_16_bit_grey_png_is_accepted():
    grey16 = (pyvips.Image.xyz(300, 200)[0] * 200).cast("ushort").copy(interpretation="grey16")
    photo = process_photo(grey16.pngsave_buffer())
    out = decode(photo.renditions[0].data)
    assert out.bands == 3 and out.interpretation == "srgb" and 50 < out.avg() < 200


# --- refused: by content, by size, by header ---------------------------------------------------------------------


@pytest.mark.parametrize("path", BAD, ids=lambda path: path.name)
def test_bad_files_are_refused_clearly_or_processed(path):
    try:
        photo = process_photo(path.read_bytes())
    except ImageRejected as refused:
        assert refused.message and refused.status in (413, 422)
        return
    assert path.name in ("truncated_jpeg.jpg", "broken_data_stream.png"), f"{path.name} was accepted"
    assert all(decode(rendition.data).width == rendition.width for rendition in photo.renditions)


FUZZ_SEEDS = ["hopper.jpg", "hopper.png", "hopper.webp", "hopper.gif", "hopper.avif", "hopper.heif", "exif_gps.jpg"]


@pytest.mark.parametrize("name", FUZZ_SEEDS)
def test_cut_and_corrupted_files_never_crash(name):
    """A small fuzz run: each seed file cut short at many lengths and with bytes overwritten at random (seeded, so
    a failure repeats) gives a photo or an ImageRejected, never another exception, a crash or a hang."""
    data = (TESTDATA / "good" / name).read_bytes()
    rng = random.Random(name)
    variants = [data[:length] for length in (1, 3, 6, 8, 12, 13, 16, 24, 32, 64, 200, len(data) // 2, len(data) - 1)]
    for _ in range(12):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(4, len(data))] = rng.randrange(256)
        variants.append(bytes(mutated))
    for variant in variants:
        try:
            process_photo(variant)
        except ImageRejected:
            pass


def test_a_truncated_jpeg_still_gives_a_photo():
    photo = processed(TESTDATA / "bad" / "truncated_jpeg.jpg")
    assert (photo.width, photo.height) == (100, 100) and len(photo.renditions) == 8


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims width x height, with a valid IHDR CRC and a few bytes of image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


BOMBS = {
    "decompression_bomb.gif": (TESTDATA / "bad" / "decompression_bomb.gif").read_bytes(),
    "decompression_bomb_extents.gif": (TESTDATA / "bad" / "decompression_bomb_extents.gif").read_bytes(),
    "huge.png": huge_png(),
}


@pytest.mark.parametrize("name", BOMBS)
def test_pixel_bombs_are_refused_from_the_header_quickly(name):
    started = time.perf_counter()
    with pytest.raises(ImageRejected, match="megapixels"):
        process_photo(BOMBS[name])
    assert time.perf_counter() - started < 0.5


def test_pixel_bombs_are_refused_without_decoding():
    """In a fresh process, refusing every bomb raises the high-water RSS by almost nothing (decoding any of them
    would take gigabytes)."""
    script = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT)!r})
from tests.test_pipeline import BOMBS, TESTDATA
from app.media.images import ImageRejected
from app.media.pipeline import process_photo
process_photo((TESTDATA / "good" / "hopper.jpg").read_bytes())  # warm up: libraries and buffers loaded
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = []
for name, data in BOMBS.items():
    try:
        process_photo(data)
    except ImageRejected as exc:
        refused.append(name)
print(json.dumps({{"refused": refused, "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["refused"] == list(BOMBS)
    assert report["grew_kb"] < 20 * 1024


def test_the_pixel_limit_is_a_parameter():
    data = (ORIENTATION / "Landscape_1.jpg").read_bytes()  # 1800 x 1200 = 2.16 MP
    with pytest.raises(ImageRejected, match="1800×1200 pixels; the limit is 2 megapixels"):
        process_photo(data, max_pixels=2_000_000)
    assert process_photo(data, max_pixels=2_160_000).width == 1800


def test_a_file_over_the_byte_limit_is_refused_before_anything_else():
    data = (ORIENTATION / "Landscape_1.jpg").read_bytes()
    with pytest.raises(ImageRejected, match="larger than") as refused:
        process_photo(data, max_bytes=len(data) - 1)
    assert refused.value.status == 413
    with pytest.raises(ImageRejected, match="larger than"):
        process_photo(b"\x00" * 2_000, max_bytes=1_000)  # not even looked at


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.txt", "PAYLOAD-MARKER " * 50)
    return buffer.getvalue()


NOT_PHOTOS = {
    "svg with a script": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>',
    "svg with an xml prolog": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
    "html renamed .jpg": b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "zip": zip_bytes(),
    "empty": b"",
    "tiff": srgb(8, 8, [1, 2, 3]).tiffsave_buffer(),
    "ppm": b"P6\n2 2\n255\n" + bytes(12),
}


@pytest.mark.parametrize("name", NOT_PHOTOS)
def test_files_that_are_not_photos_are_refused_by_content(name):
    with pytest.raises(ImageRejected) as refused:
        process_photo(NOT_PHOTOS[name])
    assert "empty" in refused.value.message if name == "empty" else "not a photo" in refused.value.message


def test_a_jpeg_with_a_zip_appended_is_accepted_and_the_zip_is_gone():
    polyglot = (TESTDATA / "good" / "hopper.jpg").read_bytes() + zip_bytes()
    photo = process_photo(polyglot)
    for rendition in photo.renditions:
        assert b"PK\x03\x04" not in rendition.data and b"PAYLOAD-MARKER" not in rendition.data


def test_only_the_photo_loaders_are_left_in_libvips(tmp_path):
    harden_vips()
    files = {
        "a.tif": srgb(4, 4, [1, 2, 3]).tiffsave_buffer(),
        "a.ppm": b"P6\n2 2\n255\n" + bytes(12),
        "a.csv": b"1,2\n3,4\n",
        "a.mat": b"2 2\n1 2\n3 4\n",
        "a.svg": NOT_PHOTOS["svg with a script"],
        "a.pdf": NOT_PHOTOS["pdf"],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_file(str(tmp_path / name)).avg()
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_buffer(data, "").avg()
    for path in ("hopper.jpg", "hopper.png", "hopper.webp", "hopper.gif", "hopper.avif"):
        assert pyvips.Image.new_from_file(str(TESTDATA / "good" / path)).avg() > 0


# --- placeholder and camera facts ----------------------------------------------------------------------------------


def test_blurhash_matches_the_reference_encoder():
    # A 6x4 gradient; the expected value is what the reference algorithm (woltapp/blurhash) gives for it.
    width, height = 6, 4
    rgb = bytes(v for y in range(height) for x in range(width) for v in (x * 40, y * 60, 200 - x * 20 - y * 10))
    assert blurhash.encode(rgb, width, height, 4, 3) == "LiEL]o7jSR%4*[NOWsrxeIe?fRe?"


def test_each_photo_has_a_placeholder():
    landscape, portrait = processed(ORIENTATION / "Landscape_1.jpg"), processed(ORIENTATION / "Portrait_1.jpg")
    assert len(landscape.blurhash) == len(portrait.blurhash) == 28  # 4x3 or 3x4 components
    assert landscape.blurhash[0] == "L" and portrait.blurhash[0] == "T"  # the size flag: 4x3 and 3x4
    for photo in (landscape, portrait):
        assert len(photo.dominant_color) == 7 and int(photo.dominant_color[1:], 16) >= 0


def test_the_dominant_colour_is_the_main_colour_and_steady_across_orientations():
    assert dominant_color(bytes([10, 200, 30]) * 90 + bytes([250, 250, 250]) * 10) == "#0ac81e"
    reference = bytes.fromhex(processed(ORIENTATION / "Landscape_1.jpg").dominant_color[1:])
    for n in (3, 6, 8):
        colour = bytes.fromhex(processed(ORIENTATION / f"Landscape_{n}.jpg").dominant_color[1:])
        assert max(abs(a - b) for a, b in zip(colour, reference, strict=True)) <= 4


def test_camera_facts_come_from_the_whitelist():
    assert processed(TESTDATA / "good" / "flower.jpg").camera == {
        "make": "Canon",
        "model": "Canon PowerShot S40",
        "focal_length_mm": 21.3,
        "aperture": 4.9,
        "shutter": "1/500",
        "taken_at": "2003-12-14T12:01:44",
    }
    # exif_gps.jpg carries GPS and nonsense numbers (ISO 4294967295): neither comes out.
    assert processed(TESTDATA / "good" / "exif_gps.jpg").camera == {
        "make": "Make",
        "model": "XXX-XXX",
        "taken_at": "2099-09-29T10:10:10",
    }
    assert processed(TESTDATA / "good" / "exif.avif").camera == {}  # its EXIF holds only an orientation


def test_broken_exif_gives_no_facts_rather_than_an_error():
    assert camera_facts(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff") == {}
    assert camera_facts(b"garbage") == {}
    assert processed(TESTDATA / "good" / "hopper_bad_exif.jpg").camera == {}
