"""Image generator: prompt -> 384x384 landscape PNG/WebP (or a graded conditioning image)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from ._common import FloatArray, to_uint8
from .scene import SceneRenderer, conditioned_frame, scene_spec

IMAGE_SIZE = 384

# Lossy WebP quality per tier: worse models also ship blockier files.
_WEBP_QUALITY = {1: 40, 2: 62, 3: 80, 4: 92}


def load_conditioning(data: bytes, max_side: int = 512) -> FloatArray:
    """Decode conditioning image bytes to float RGB in [0, 1], at most ``max_side`` pixels.

    Transparent pixels are composited over white. Raises ``ValueError`` naming the argument
    when the bytes are not a decodable image (or are a decompression bomb).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", (max_side, max_side))  # cheap JPEG downscale on decode
                im.load()
                rgba = im.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"conditioning_image is not a decodable image: {exc}") from exc
    rgba.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(background, rgba).convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / np.float32(255)


def render_image(
    prompt: str, seed: int, quality: int, style: int, conditioning: FloatArray | None
) -> np.ndarray:
    """Render the uint8 RGB (IMAGE_SIZE, IMAGE_SIZE, 3) picture for these arguments."""
    spec = scene_spec(prompt, seed, style)
    if conditioning is not None:
        frame = conditioned_frame(conditioning, spec, IMAGE_SIZE, IMAGE_SIZE, quality, 0.0, 1.0)
    else:
        frame = SceneRenderer(spec, IMAGE_SIZE, IMAGE_SIZE, quality).frame()
    return to_uint8(frame)


def encode_image(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encode uint8 RGB pixels as PNG or WebP with no metadata chunks at all.

    Pillow writes no tEXt/eXIf/XMP unless asked, and no timestamps, so output is
    byte-identical for identical pixels.
    """
    buf = io.BytesIO()
    im = Image.fromarray(pixels, mode="RGB")
    if fmt == "png":
        im.save(buf, format="PNG", compress_level=6)
    elif fmt == "webp":
        im.save(buf, format="WEBP", quality=_WEBP_QUALITY[quality], method=4, exact=False)
    else:  # pragma: no cover - guarded by generate()
        raise ValueError(f"fmt {fmt!r} is not an image format")
    return buf.getvalue()
