"""Shared helpers for the built-in generators: hashing, seeded RNGs, palettes, resizing.

Everything here is deterministic for a fixed dependency set. Python's ``hash()`` is salted per
process, so all derivations go through :mod:`hashlib` instead.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Float images/arrays; float32 in practice, but numpy's stubs widen many results to float64.
FloatArray = NDArray[np.floating[Any]]

_WORD_RE = re.compile(r"[a-z0-9]+")


def digest(*parts: object) -> bytes:
    """SHA-256 over the ``repr``-free, unambiguous encoding of ``parts``.

    Each part is stringified and length-prefixed so ("ab", "c") and ("a", "bc") differ.
    Bytes are hashed as-is (e.g. a conditioning image).
    """
    h = hashlib.sha256()
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.digest()


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded from ``digest(*parts)`` (stable across processes)."""
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest(*parts)[:16], "little")))


def unit(*parts: object) -> float:
    """A deterministic float in [0, 1) derived from ``parts``."""
    return int.from_bytes(digest(*parts)[:8], "little") / 2.0**64


def prompt_words(prompt: str) -> list[str]:
    """Lower-cased alphanumeric words of the prompt, in order (punctuation/case insensitive)."""
    return _WORD_RE.findall(prompt.lower())


def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV (hue wraps) to an RGB triple in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (r, g, b)


def mix(
    a: tuple[float, float, float], b: tuple[float, float, float], t: float
) -> tuple[float, float, float]:
    """Linear interpolation between two RGB triples."""
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


# Named colours a prompt may mention; they bias the accent colour of the scene/asset.
COLOUR_WORDS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.16, 0.16),
    "orange": (0.95, 0.55, 0.12),
    "yellow": (0.97, 0.86, 0.2),
    "gold": (0.9, 0.72, 0.2),
    "golden": (0.9, 0.72, 0.2),
    "green": (0.22, 0.68, 0.3),
    "teal": (0.1, 0.6, 0.6),
    "cyan": (0.2, 0.8, 0.88),
    "blue": (0.18, 0.35, 0.88),
    "purple": (0.55, 0.25, 0.75),
    "violet": (0.6, 0.35, 0.85),
    "pink": (0.95, 0.5, 0.7),
    "brown": (0.5, 0.32, 0.18),
    "white": (0.93, 0.93, 0.95),
    "black": (0.08, 0.08, 0.1),
    "grey": (0.5, 0.5, 0.52),
    "gray": (0.5, 0.5, 0.52),
    "silver": (0.75, 0.76, 0.8),
}


@dataclass(frozen=True)
class Look:
    """How a ``style`` (a fake model's "house style") shifts colours.

    ``hue_shift`` rotates every palette hue, ``saturation``/``contrast`` scale them and
    ``warmth`` tints towards orange (positive) or blue (negative).
    """

    hue_shift: float
    saturation: float
    contrast: float
    warmth: float


# A handful of distinct looks; styles beyond the table reuse one with an extra hue rotation so
# every small integer still yields a different palette.
_LOOKS: tuple[Look, ...] = (
    Look(0.0, 1.0, 1.0, 0.0),  # natural
    Look(0.0, 0.55, 0.85, 0.03),  # pastel / soft
    Look(0.04, 1.35, 1.15, 0.0),  # vivid
    Look(-0.03, 0.9, 1.05, 0.12),  # golden hour
    Look(0.08, 0.8, 1.0, -0.1),  # cool / cinematic
    Look(0.5, 1.1, 1.2, 0.0),  # retro complementary
)


def look_for(style: int) -> Look:
    """The :class:`Look` of a style index (any non-negative int)."""
    base = _LOOKS[style % len(_LOOKS)]
    extra = (style // len(_LOOKS)) * 0.137  # golden-ratio-ish step keeps hues apart
    return Look(base.hue_shift + extra, base.saturation, base.contrast, base.warmth)


def apply_look(rgb: FloatArray, look: Look) -> FloatArray:
    """Apply saturation, contrast and warmth of ``look`` to float RGB in [0, 1] (..., 3).

    Hue rotation is applied earlier, when palettes are built, because it is cheap there.
    """
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = grey[..., None] + (rgb - grey[..., None]) * np.float32(look.saturation)
    out = (out - 0.5) * np.float32(look.contrast) + 0.5
    if look.warmth:
        out = out + np.array([look.warmth, look.warmth * 0.3, -look.warmth], dtype=np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def resize(img: FloatArray, width: int, height: int, resample: Image.Resampling) -> FloatArray:
    """Resize a float image (H, W) or (H, W, C) channel by channel with Pillow's 'F' mode.

    Pillow's float resamplers are fast, deterministic and avoid a round-trip through uint8.
    """
    if img.ndim == 2:
        return np.asarray(
            Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F").resize(
                (width, height), resample
            ),
            dtype=np.float32,
        )
    channels = [resize(img[..., c], width, height, resample) for c in range(img.shape[2])]
    return np.stack(channels, axis=-1)


def value_noise(
    rng: np.random.Generator, height: int, width: int, cells: int, octaves: int
) -> FloatArray:
    """Fractal value noise in roughly [-1, 1]: ``octaves`` bicubic-upsampled random grids.

    ``cells`` is the grid size of the coarsest octave along the longer side; each further
    octave doubles the frequency and halves the amplitude. More octaves = finer detail, which
    is how quality tiers get more texture.
    """
    out = np.zeros((height, width), dtype=np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        gh = max(2, round(n * height / max(height, width)) + 1)
        gw = max(2, round(n * width / max(height, width)) + 1)
        grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
        out += np.float32(amp) * resize(grid, width, height, Image.Resampling.BICUBIC)
        total += amp
        amp *= 0.5
    return out / np.float32(total)


def f32(x: Any) -> FloatArray:
    """View/convert anything array-like as float32 (also pins numpy's loose stub types)."""
    return np.asarray(x, dtype=np.float32)


def smoothstep(edge0: float, edge1: float, x: FloatArray) -> FloatArray:
    """Hermite smoothstep, vectorised; edges may be given in either order."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return f32(t * t * (3.0 - 2.0 * t))


def to_uint8(rgb: FloatArray) -> NDArray[np.uint8]:
    """Float RGB in [0, 1] to uint8 with rounding (not truncation, which darkens)."""
    return np.asarray(np.clip(np.rint(rgb * 255.0), 0, 255), dtype=np.uint8)
