"""BlurHash encoder (https://blurha.sh, the published algorithm by Wolt): a photo's blurred placeholder in ~30 chars.

Pure Python: it runs on a thumbnail of a few hundred pixels, so speed is not a concern.
"""

from __future__ import annotations

import math

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def encode(rgb: bytes, width: int, height: int, x_components: int = 4, y_components: int = 3) -> str:
    """The BlurHash of `width`x`height` pixels given as packed 8-bit RGB, row by row."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("BlurHash takes 1 to 9 components in each direction")
    if len(rgb) != width * height * 3:
        raise ValueError(f"expected {width * height * 3} bytes of RGB, got {len(rgb)}")
    linear = [_srgb_to_linear(value) for value in range(256)]
    pixels = [linear[value] for value in rgb]
    factors = []
    for j in range(y_components):
        cos_y = [math.cos(math.pi * j * y / height) for y in range(height)]
        for i in range(x_components):
            cos_x = [math.cos(math.pi * i * x / width) for x in range(width)]
            red = green = blue = 0.0
            for y in range(height):
                row = y * width * 3
                for x in range(width):
                    basis = cos_x[x] * cos_y[y]
                    at = row + x * 3
                    red += basis * pixels[at]
                    green += basis * pixels[at + 1]
                    blue += basis * pixels[at + 2]
            scale = (1 if i == j == 0 else 2) / (width * height)
            factors.append((red * scale, green * scale, blue * scale))

    dc, ac = factors[0], factors[1:]
    parts = [_base83((x_components - 1) + (y_components - 1) * 9, 1)]
    if ac:
        actual_max = max(abs(value) for factor in ac for value in factor)
        quantised_max = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
        maximum = (quantised_max + 1) / 166
        parts.append(_base83(quantised_max, 1))
    else:
        maximum = 1.0
        parts.append(_base83(0, 1))
    red, green, blue = (_linear_to_srgb(value) for value in dc)
    parts.append(_base83((red << 16) + (green << 8) + blue, 4))
    for factor in ac:
        red, green, blue = (max(0, min(18, math.floor(_sign_pow(value / maximum, 0.5) * 9 + 9.5))) for value in factor)
        parts.append(_base83(red * 19 * 19 + green * 19 + blue, 2))
    return "".join(parts)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _srgb_to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)
