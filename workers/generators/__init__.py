"""Built-in procedural "generative models" that produce real media files, offline.

They stand in for real models in the demo arena and in tests: every call returns a genuine,
standards-conforming file (PNG/WebP image, H.264 MP4 / VP9 WebM video, glTF-binary mesh,
3DGS ``.ply`` Gaussian splat) whose content is derived from the prompt, and whose visual
quality depends on ``quality`` (tier 1..4, 4 = best) so that fake models of different tiers
are visibly distinguishable by human voters. ``style`` gives each fake model its own palette.

Contract of :func:`generate`:

* Deterministic: identical arguments give byte-identical output, in any process (hashing
  uses :mod:`hashlib`, never the salted ``hash()``; ffmpeg runs single-threaded and
  bit-exact). This holds for a fixed set of dependency versions (numpy, Pillow, ffmpeg build).
* Anonymous: files carry no model/organisation names or identifying metadata (no EXIF or
  text chunks, no encoder tags, neutral glTF ``asset.generator``).
* Pure Python + numpy/Pillow + the ffmpeg binary shipped by ``imageio-ffmpeg``; no Django,
  no network.

:func:`render_reference` makes the input photo of an image-to-3D prompt: a studio shot of the
very object the ``glb``/``ply`` generators build for that prompt, framed so that their
front projection of the photo lands on the right parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import FloatArray, digest

FORMATS: tuple[str, ...] = ("png", "webp", "mp4", "webm", "glb", "ply")
MEDIA_TYPE: dict[str, str] = {
    "png": "image",
    "webp": "image",
    "mp4": "video",
    "webm": "video",
    "glb": "mesh",
    "ply": "splat",
}
CONTENT_TYPE: dict[str, str] = {
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "glb": "model/gltf-binary",
    # PLY has no registered media type; viewers fetch it as bytes.
    "ply": "application/octet-stream",
}
QUALITY_TIERS: tuple[int, ...] = (1, 2, 3, 4)

__all__ = [
    "CONTENT_TYPE",
    "FORMATS",
    "MEDIA_TYPE",
    "QUALITY_TIERS",
    "GeneratedFile",
    "generate",
    "render_reference",
]


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file.

    ``width``/``height`` are set for images and videos, ``duration_s`` for videos only.
    """

    data: bytes
    extension: str
    content_type: str
    media_type: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


def _check_int(name: str, value: object) -> int:
    # bool is an int subclass; True as a seed/tier is almost certainly a bug upstream.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    return value


def generate(
    *,
    fmt: str,
    prompt: str,
    seed: int,
    quality: int,
    style: int = 0,
    conditioning_image: bytes | None = None,
) -> GeneratedFile:
    """Generate one file.

    Args:
        fmt: one of :data:`FORMATS` (case-insensitive, a leading dot is tolerated).
        prompt: non-empty text; its words decide composition, palette and subject.
        seed: any int; varies details (positions, proportions) for the same prompt.
        quality: tier 1..4 (4 = best): resolution/detail, anti-aliasing, noise, banding,
            motion smoothness, polygon/splat count.
        style: non-negative int; each fake model's palette/look.
        conditioning_image: optional image bytes (PNG/JPEG/WebP). For ``glb``/``ply`` it
            supplies the asset's colours (image-to-3D); for images it is graded towards the
            prompt's palette (image editing); for videos it is animated with a slow zoom
            (image-to-video).

    Raises:
        ValueError: naming the offending argument (unknown fmt, quality outside 1..4, empty
            prompt, negative style, non-int seed/quality/style, undecodable image).
        RuntimeError: if the bundled ffmpeg fails to encode a video.
    """
    fmt, seed, quality, style = _check_arguments(
        fmt, prompt, seed, quality, style, conditioning_image
    )
    # Imported lazily so that e.g. listing FORMATS does not pull in the renderers.
    from .image import IMAGE_SIZE, encode_image, load_conditioning, render_image

    cond = load_conditioning(bytes(conditioning_image)) if conditioning_image else None
    media_type = MEDIA_TYPE[fmt]
    width = height = None
    duration = None
    if media_type == "image":
        data = encode_image(render_image(prompt, seed, quality, style, cond), fmt, quality)
        width = height = IMAGE_SIZE
    elif media_type == "video":
        from .video import FPS, N_FRAMES, VIDEO_SIZE, encode_video, render_frames

        data = encode_video(render_frames(prompt, seed, quality, style, cond), fmt, quality)
        width = height = VIDEO_SIZE
        duration = N_FRAMES / FPS
    else:
        data = _generate_3d(media_type, prompt, seed, quality, style, cond, conditioning_image)
    return GeneratedFile(
        data=data,
        extension=fmt,
        content_type=CONTENT_TYPE[fmt],
        media_type=media_type,
        width=width,
        height=height,
        duration_s=duration,
    )


def _check_arguments(
    fmt: object,
    prompt: object,
    seed: object,
    quality: object,
    style: object,
    conditioning_image: object,
) -> tuple[str, int, int, int]:
    """Validate :func:`generate`'s arguments (in this order; the first bad one raises
    ``ValueError`` naming it) and return the normalised (fmt, seed, quality, style)."""
    if not isinstance(fmt, str) or fmt.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}")
    fmt = fmt.lower().lstrip(".")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    seed = _check_int("seed", seed)
    quality = _check_int("quality", quality)
    if quality not in QUALITY_TIERS:
        raise ValueError(f"quality must be between 1 and 4, got {quality}")
    style = _check_int("style", style)
    if style < 0:
        raise ValueError(f"style must be >= 0, got {style}")
    if conditioning_image is not None and (
        not isinstance(conditioning_image, bytes | bytearray) or not conditioning_image
    ):
        raise ValueError("conditioning_image must be non-empty bytes or None")
    return fmt, seed, quality, style


def _generate_3d(
    media_type: str,
    prompt: str,
    seed: int,
    quality: int,
    style: int,
    cond: FloatArray | None,
    conditioning_image: bytes | None,
) -> bytes:
    """GLB (``mesh``) or PLY (``splat``) bytes. Image-to-3D: the image's digest also varies
    proportions (different inputs, different assets), its pixels colour the asset."""
    image_key = digest(bytes(conditioning_image)) if conditioning_image else b""
    if media_type == "mesh":
        from .mesh import generate_mesh

        return generate_mesh(prompt, seed, quality, style, cond, image_key)
    from .splat import generate_splat

    return generate_splat(prompt, seed, quality, style, cond, image_key)


def render_reference(*, prompt: str, seed: int, size: int = 384) -> bytes:
    """PNG bytes of a clean ``size`` x ``size`` "product photo" of the prompt's object.

    The object is the figure the 3D generators build for ``prompt`` (in the neutral style 0,
    i.e. the prompt's own colours), seen from the front -- the direction from which
    ``generate(fmt="glb" | "ply", conditioning_image=...)`` projects a photo's colours --
    Lambert-shaded with a soft floor shadow on a light studio gradient, anti-aliased. Use it
    as the ``conditioning_image`` of image-to-3D prompts. ``seed`` varies the proportions.

    Deterministic (byte-identical across runs and processes), RGB, no metadata chunks.

    Raises:
        ValueError: naming the argument (empty prompt, non-int seed or size, size outside
            64..1024).
    """
    from .reference import render_reference as _render_reference

    return _render_reference(prompt=prompt, seed=seed, size=size)
