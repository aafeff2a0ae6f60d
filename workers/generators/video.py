"""Video generator: a 2 s, 12 fps, 256x256 panning landscape encoded as H.264 MP4 or VP9 WebM.

Frames are rendered with :class:`~workers.generators.scene.SceneRenderer` (layers pre-rendered
once, composed per frame with parallax), converted to YUV 4:2:0 in numpy and piped raw into the
ffmpeg binary shipped by ``imageio-ffmpeg``.

Determinism: ffmpeg runs single-threaded with ``+bitexact`` flags and no metadata, the RGB->YUV
conversion is ours (so swscale's CPU-dependent SIMD paths are never used), x264's SEI (which
embeds the encoder name and settings) is dropped with the ``filter_units`` bitstream filter and
the per-stream ``encoder`` tag is cleared. The result is byte-identical across runs and
processes for a given ffmpeg build.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from ._common import FloatArray, rng_for
from .scene import SceneRenderer, conditioned_frame, scene_spec

VIDEO_SIZE = 256
FPS = 12
N_FRAMES = 24  # 2 seconds

# Per tier: frames each rendered image is held for (choppy motion), camera jitter amplitude in
# render pixels, and the encoder's constant-quality level (higher = blockier).
_HOLD = {1: 3, 2: 2, 3: 1, 4: 1}
_JITTER = {1: 2.0, 2: 0.8, 3: 0.0, 4: 0.0}
_X264_CRF = {1: 38, 2: 32, 3: 27, 4: 19}
_VP9_CRF = {1: 52, 2: 44, 3: 37, 4: 28}

# Common output flags: no metadata, no encoder identification, reproducible muxing.
_NEUTRAL = [
    "-map_metadata", "-1",
    "-map_chapters", "-1",
    "-metadata:s:v:0", "encoder=",
    "-fflags", "+bitexact",
    "-flags:v", "+bitexact",
    "-threads", "1",
    "-colorspace", "bt709",
    "-color_primaries", "bt709",
    "-color_trc", "bt709",
    "-color_range", "tv",
]  # fmt: skip

_CODEC_ARGS = {
    "mp4": lambda crf: [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-g", str(N_FRAMES),
        "-pix_fmt", "yuv420p", "-profile:v", "high",
        # SEI NAL units (type 6) carry x264's version/options banner.
        "-bsf:v", "filter_units=remove_types=6",
        "-movflags", "+faststart", "-f", "mp4",
    ],
    "webm": lambda crf: [
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", str(crf),
        "-b:v", "0", "-row-mt", "0", "-tile-columns", "0", "-g", str(N_FRAMES),
        "-pix_fmt", "yuv420p", "-f", "webm",
    ],
}  # fmt: skip


def rgb_to_yuv420(rgb: FloatArray) -> bytes:
    """Float RGB (H, W, 3) in [0, 1] to planar BT.709 limited-range YUV 4:2:0 bytes.

    Chroma is the mean of each 2x2 block. H and W must be even.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    cb = (b - y) / 1.8556
    cr = (r - y) / 1.5748
    h, w = y.shape

    def sub(c: FloatArray) -> FloatArray:
        return np.asarray(c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)), dtype=np.float32)

    planes: list[NDArray[np.uint8]] = [
        np.clip(np.rint(16 + 219 * y), 0, 255).astype(np.uint8),
        np.clip(np.rint(128 + 224 * sub(cb)), 0, 255).astype(np.uint8),
        np.clip(np.rint(128 + 224 * sub(cr)), 0, 255).astype(np.uint8),
    ]
    return b"".join(p.tobytes() for p in planes)


def render_frames(
    prompt: str, seed: int, quality: int, style: int, conditioning: FloatArray | None
) -> list[FloatArray]:
    """Render the N_FRAMES float RGB frames of the clip (before encoding)."""
    spec = scene_spec(prompt, seed, style)
    jitter_rng = rng_for(spec.key, "jitter", quality)
    hold, amp = _HOLD[quality], _JITTER[quality]
    renderer = (
        None
        if conditioning is not None
        else SceneRenderer(spec, VIDEO_SIZE, VIDEO_SIZE, quality, margin=0.3)
    )
    frames: list[FloatArray] = []
    frame: FloatArray | None = None
    for i in range(N_FRAMES):
        # Bad tiers only render every ``hold``-th frame and repeat it: visibly choppy.
        if i % hold == 0 or frame is None:
            t = i / FPS
            jitter = (float(jitter_rng.uniform(-amp, amp)), 0.0) if amp else (0.0, 0.0)
            if renderer is None:
                assert conditioning is not None
                zoom = 1.0 + 0.1 * t + 0.02 * jitter[0]
                frame = conditioned_frame(
                    conditioning, spec, VIDEO_SIZE, VIDEO_SIZE, quality, t, zoom
                )
            else:
                frame = renderer.frame(t=t, pan=0.11 * t, jitter=jitter)
        frames.append(frame)
    return frames


def encode_video(frames: list[FloatArray], fmt: str, quality: int) -> bytes:
    """Encode frames with ffmpeg into ``fmt`` ("mp4" or "webm"); raises RuntimeError if ffmpeg
    fails (with the tail of its log)."""
    crf = (_X264_CRF if fmt == "mp4" else _VP9_CRF)[quality]
    h, w = frames[0].shape[:2]
    raw = b"".join(rgb_to_yuv420(f) for f in frames)
    with tempfile.TemporaryDirectory(prefix="arena-gen-") as tmp:
        out = Path(tmp) / f"out.{fmt}"
        # faststart and WebM cues need a seekable output, hence a file rather than a pipe.
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-r", str(FPS),
            "-i", "pipe:0",
            "-an", "-sn", "-dn",
            *_CODEC_ARGS[fmt](crf),
            *_NEUTRAL,
            str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, input=raw, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace")[-800:]
            raise RuntimeError(f"ffmpeg failed to encode {fmt} (exit {proc.returncode}): {tail}")
        return out.read_bytes()
