"""Tests for the built-in procedural generators (workers.generators). No Django needed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from workers.generators import CONTENT_TYPE, FORMATS, MEDIA_TYPE, GeneratedFile, generate
from workers.media import validate

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ("a red fox in a green forest", "sunset over the ocean", "snowy mountain village")


@cache
def gen(fmt: str, prompt: str = "a cute cat on a hill", seed: int = 1, quality: int = 3,
        style: int = 0) -> GeneratedFile:  # fmt: skip
    """Memoised generate(): several tests look at the same files; keeps the suite fast."""
    return generate(fmt=fmt, prompt=prompt, seed=seed, quality=quality, style=style)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def glb_json_and_bin(data: bytes) -> tuple[dict, bytes]:
    (json_len,) = struct.unpack("<I", data[12:16])
    doc = json.loads(data[20 : 20 + json_len])
    return doc, data[20 + json_len + 8 :]


def glb_positions(data: bytes) -> np.ndarray:
    doc, blob = glb_json_and_bin(data)
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    view = doc["bufferViews"][acc["bufferView"]]
    return np.frombuffer(blob, "<f4", acc["count"] * 3, view["byteOffset"]).reshape(-1, 3)


def glb_colours(data: bytes) -> np.ndarray:
    """Vertex colours as sRGB floats (COLOR_0 is linear uint16 RGBA)."""
    doc, blob = glb_json_and_bin(data)
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"]]
    view = doc["bufferViews"][acc["bufferView"]]
    lin = np.frombuffer(blob, "<u2", acc["count"] * 4, view["byteOffset"]).reshape(-1, 4)
    return (lin[:, :3] / 65535.0) ** (1 / 2.4)


def ply_splats(data: bytes) -> np.ndarray:
    from workers.generators.splat import PLY_DTYPE

    end = data.index(b"end_header\n") + len(b"end_header\n")
    return np.frombuffer(data, PLY_DTYPE, offset=end)


def sharpness(png: bytes) -> float:
    """Mean squared Laplacian of the luminance: high-frequency energy / crispness."""
    g = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.mean(lap**2))


def video_frames(data: bytes, tmp_path: Path, suffix: str) -> np.ndarray:
    path = tmp_path / f"clip.{suffix}"
    path.write_bytes(data)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


# -- contract ---------------------------------------------------------------------------------
def test_it_exposes_formats_media_types_and_content_types() -> None:
    assert FORMATS == ("png", "webp", "mp4", "webm", "glb", "ply")
    assert MEDIA_TYPE == {
        "png": "image",
        "webp": "image",
        "mp4": "video",
        "webm": "video",
        "glb": "mesh",
        "ply": "splat",
    }
    assert set(CONTENT_TYPE) == set(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_generates_every_format_with_consistent_fields(fmt: str) -> None:
    out = gen(fmt)
    assert out.extension == fmt
    assert out.media_type == MEDIA_TYPE[fmt]
    assert out.content_type == CONTENT_TYPE[fmt]
    info = validate(out.data, fmt)
    assert info.media_type == out.media_type
    assert (info.width, info.height) == (out.width, out.height)
    if out.media_type == "image":
        assert (out.width, out.height) == (384, 384)
    if out.media_type == "video":
        assert (out.width, out.height) == (256, 256)
        assert out.duration_s == pytest.approx(2.0)
        assert info.duration_s == pytest.approx(2.0, abs=0.1)
        assert info.detail["frames"] == 24
        assert info.detail["codec"] == ("h264" if fmt == "mp4" else "vp9")
    else:
        assert out.duration_s is None


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("quality", [1, 2, 4])
def test_it_produces_valid_files_at_every_tier(fmt: str, quality: int) -> None:
    # Tier 3 is covered by the test above.
    validate(gen(fmt, quality=quality, style=quality).data, fmt)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"fmt": "gif"}, "fmt"),
        ({"fmt": ""}, "fmt"),
        ({"quality": 0}, "quality"),
        ({"quality": 5}, "quality"),
        ({"quality": True}, "quality"),
        ({"quality": 2.0}, "quality"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n"}, "prompt"),
        ({"seed": "1"}, "seed"),
        ({"style": -1}, "style"),
        ({"conditioning_image": b"not an image"}, "conditioning_image"),
        ({"conditioning_image": b""}, "conditioning_image"),
    ],
)
def test_it_rejects_bad_arguments_naming_them(kwargs: dict, argument: str) -> None:
    args = {"fmt": "png", "prompt": "a cat", "seed": 1, "quality": 2, "style": 0} | kwargs
    with pytest.raises(ValueError, match=argument):
        generate(**args)


def test_it_accepts_format_case_and_leading_dot() -> None:
    out = generate(fmt=".PNG", prompt="a cat", seed=1, quality=1)
    assert out.extension == "png"
    assert out.data == generate(fmt="png", prompt="a cat", seed=1, quality=1).data


# -- determinism ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_it_is_byte_identical_for_identical_arguments(fmt: str) -> None:
    first = generate(fmt=fmt, prompt="a cute cat on a hill", seed=1, quality=3)
    assert first.data == gen(fmt).data  # gen() was computed by an earlier call


def test_it_is_byte_identical_across_processes() -> None:
    """A fresh interpreter (different hash salt) produces the very same bytes, video too."""
    code = (
        "import hashlib, json\n"
        "from workers.generators import generate\n"
        "out = {f: hashlib.sha256(generate(fmt=f, prompt='a cute cat on a hill', seed=1,"
        " quality=3).data).hexdigest() for f in ('png', 'webp', 'mp4', 'webm', 'glb', 'ply')}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other == {fmt: sha(gen(fmt).data) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", ["png", "webp", "mp4", "glb", "ply"])
def test_it_differs_by_seed_prompt_and_style(fmt: str) -> None:
    base = gen(fmt, quality=2)
    hashes = {
        sha(base.data),
        sha(gen(fmt, quality=2, seed=2).data),
        sha(gen(fmt, prompt="a tree in the desert", quality=2).data),
        sha(gen(fmt, quality=2, style=1).data),
    }
    assert len(hashes) == 4


def test_it_varies_pixels_not_just_bytes_across_seeds_and_styles() -> None:
    def pixels(**kw: int) -> np.ndarray:
        data = gen("png", quality=4, **kw).data
        return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64)

    base = pixels()
    assert np.abs(base - pixels(seed=2)).mean() > 3
    assert np.abs(base - pixels(style=1)).mean() > 3


# -- quality tiers ----------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", PROMPTS)
def test_it_makes_images_sharper_at_higher_tiers(prompt: str) -> None:
    scores = [sharpness(gen("png", prompt=prompt, quality=q).data) for q in (1, 2, 3, 4)]
    assert scores == sorted(scores), scores
    assert scores[3] > 3 * scores[0], scores


def test_it_makes_video_motion_smoother_at_higher_tiers(tmp_path: Path) -> None:
    def held_frames(q: int) -> int:
        frames = video_frames(gen("mp4", quality=q).data, tmp_path, "mp4").astype(np.float64)
        diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
        return int((diffs < 0.25 * diffs.max()).sum())

    # Tier 1 renders every third frame only (choppy); tier 4 moves on every frame.
    assert held_frames(1) >= 12
    assert held_frames(4) <= 2


def test_it_adds_mesh_faces_and_splats_with_tier() -> None:
    faces = [validate(gen("glb", quality=q).data, "glb").detail["triangles"] for q in (1, 2, 3, 4)]
    splats = [validate(gen("ply", quality=q).data, "ply").detail["splats"] for q in (1, 2, 3, 4)]
    assert faces == sorted(faces) and len(set(faces)) == 4, faces
    assert splats == sorted(splats) and len(set(splats)) == 4, splats
    assert splats[0] >= 5000 and splats[3] <= 15000


# -- format details ---------------------------------------------------------------------------
def test_it_writes_images_without_metadata_chunks() -> None:
    png = gen("png").data
    pos, chunk_types = 8, []
    while pos < len(png):
        length, ctype = struct.unpack(">I4s", png[pos : pos + 8])
        chunk_types.append(ctype)
        pos += 12 + length
    assert set(chunk_types) == {b"IHDR", b"IDAT", b"IEND"}
    webp = gen("webp").data
    assert webp[12:16] == b"VP8 "  # simple lossy WebP: no VP8X, so no EXIF/XMP chunks
    assert Image.open(io.BytesIO(webp)).getexif() == {}


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_it_writes_videos_without_encoder_tags(fmt: str) -> None:
    data = gen(fmt).data
    for needle in (b"x264", b"Lavc", b"libvpx", b"encoder", b"ENCODER", b"Google"):
        assert needle not in data, needle


def test_it_encodes_browser_friendly_mp4() -> None:
    data = gen("mp4").data
    # faststart: the moov box precedes mdat so playback can start before the download ends.
    assert data.index(b"moov") < data.index(b"mdat")
    assert b"avc1" in data


def test_it_writes_a_neutral_self_contained_glb() -> None:
    data = gen("glb", quality=4).data
    doc, _ = glb_json_and_bin(data)
    assert doc["asset"] == {"version": "2.0", "generator": "arena"}
    text = json.dumps(doc)
    assert '"extras"' not in text and '"name"' not in text and '"uri"' not in text
    prim = doc["meshes"][0]["primitives"][0]
    assert {"POSITION", "NORMAL", "COLOR_0"} <= set(prim["attributes"])


@pytest.mark.parametrize("prompt", ["a cute cat", "an oak tree", "a mushroom", "a snowman"])
def test_it_keeps_meshes_small_centred_and_unit_sized(prompt: str) -> None:
    data = gen("glb", prompt=prompt, quality=4).data
    assert len(data) < 300 * 1024
    pos = glb_positions(data)
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    assert np.allclose((lo + hi) / 2, 0, atol=1e-4)
    assert (hi - lo).max() == pytest.approx(1.0, abs=1e-4)


def test_it_writes_the_3dgs_ply_layout() -> None:
    data = gen("ply", quality=4).data
    header = data[: data.index(b"end_header\n") + len(b"end_header\n")].decode()
    props = [
        "x",
        "y",
        "z",
        "nx",
        "ny",
        "nz",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    expected = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 15000\n"
        + "".join(f"property float {p}\n" for p in props)
        + "end_header\n"
    )
    assert header == expected
    assert len(data) == len(header) + 15000 * 17 * 4
    s = ply_splats(data)
    xyz = np.stack([s["x"], s["y"], s["z"]], axis=1)
    assert np.allclose((xyz.min(axis=0) + xyz.max(axis=0)) / 2, 0, atol=0.05)
    assert 0.8 < (xyz.max(axis=0) - xyz.min(axis=0)).max() < 1.2
    opacity = 1 / (1 + np.exp(-s["opacity"]))  # stored pre-sigmoid
    assert 0.5 < float(np.median(opacity)) < 1.0
    scale = np.exp(s["scale_0"])  # stored as log
    assert 0.001 < float(np.median(scale)) < 0.05
    colour = 0.5 + 0.28209479 * s["f_dc_0"]
    assert colour.min() >= -1e-4 and colour.max() <= 1 + 1e-4
    quat = np.stack([s[f"rot_{k}"] for k in range(4)], axis=1)
    assert np.allclose(np.linalg.norm(quat, axis=1), 1, atol=1e-4)


def _solid_png(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["glb", "ply"])
def test_it_colours_image_to_3d_assets_from_the_conditioning_image(fmt: str) -> None:
    def mean_colour(rgb: tuple[int, int, int]) -> np.ndarray:
        out = generate(
            fmt=fmt, prompt="a cat", seed=1, quality=3, conditioning_image=_solid_png(rgb)
        )
        validate(out.data, fmt)
        if fmt == "glb":
            return glb_colours(out.data).mean(axis=0)
        s = ply_splats(out.data)
        return np.stack([0.5 + 0.28209479 * s[f"f_dc_{k}"] for k in range(3)], axis=1).mean(0)

    red, blue = mean_colour((220, 20, 20)), mean_colour((20, 20, 220))
    assert red[0] > red[2] + 0.2
    assert blue[2] > blue[0] + 0.2


@pytest.mark.parametrize("fmt", ["png", "webm"])
def test_it_uses_a_conditioning_image_for_images_and_videos(fmt: str) -> None:
    cond = _solid_png((20, 200, 40))
    out = generate(fmt=fmt, prompt="a cat", seed=1, quality=4, conditioning_image=cond)
    validate(out.data, fmt)
    assert out.data != generate(fmt=fmt, prompt="a cat", seed=1, quality=4).data
    again = generate(fmt=fmt, prompt="a cat", seed=1, quality=4, conditioning_image=cond)
    assert again.data == out.data
