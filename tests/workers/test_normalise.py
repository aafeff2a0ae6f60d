"""Tests for workers.normalise: every model of an arena is served in one form.

No Django needed. Inputs come from the built-in generators (which differ by format, size and
layout per quality tier, like real models do) and from the bundled ffmpeg binary.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from workers.generators import generate
from workers.media import InvalidMedia, strip_metadata, validate
from workers.normalise import Profile, normalise

SMALL = Profile(
    image_side=96,
    video_width=64,
    video_height=48,
    video_fps=10,
    video_seconds=1.5,
    splat_count=3000,
    splat_sh_degree=0,
)


def _made(fmt: str, quality: int) -> bytes:
    return strip_metadata(
        generate(fmt=fmt, prompt="a red chair", seed=1, quality=quality).data, fmt
    )


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    colour = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _clip(tmp_path: Path, source: str, fmt: str, *extra: str) -> bytes:
    out = tmp_path / f"clip.{fmt}"
    codec = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] if fmt == "mp4" else ["-c:v", "libvpx-vp9"]
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", source, *extra, *codec, str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


def _glb_doc(data: bytes) -> dict:
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20 : 20 + length])


def _ply_properties(data: bytes) -> list[str]:
    header = data[: data.index(b"end_header")].decode("ascii").splitlines()
    return [ln.split()[2] for ln in header if ln.startswith("property")]


# -- images -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "quality"), [("png", 1), ("webp", 1), ("webp", 4), ("png", 4)])
def test_every_image_becomes_a_png_of_the_arenas_side(fmt: str, quality: int) -> None:
    data, served = normalise(_made(fmt, quality), fmt, SMALL)

    info = validate(data, served)
    assert (served, info.width, info.height) == ("png", 96, 96)
    assert info.detail["mode"] == "RGB"


def test_a_wide_image_is_fitted_and_padded_with_transparency() -> None:
    data, _ = normalise(_png((200, 100)), "png", SMALL)

    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (96, 96) and im.mode == "RGBA"
        assert im.getpixel((48, 2)) == (0, 0, 0, 0), "the band above the picture is transparent"
        assert im.getpixel((48, 48)) == (200, 30, 30, 255), "the picture itself is unchanged"


def test_transparency_survives() -> None:
    data, _ = normalise(_png((96, 96), "RGBA"), "png", SMALL)

    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGBA" and im.getpixel((10, 10)) == (200, 30, 30, 128)


# -- videos -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "fmt", "extra"),
    [
        ("testsrc=size=160x90:rate=30:duration=3", "mp4", ()),  # longer, wider, faster
        ("testsrc2=size=40x40:rate=5:duration=0.6", "webm", ()),  # shorter, smaller, slower
        (  # with a sound track, which is dropped
            "testsrc=size=64x48:rate=10:duration=2",
            "mp4",
            ("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", "-shortest"),
        ),
    ],
)
def test_every_clip_becomes_one_mp4_size_rate_and_length(
    tmp_path: Path, source: str, fmt: str, extra: tuple[str, ...]
) -> None:
    data, served = normalise(_clip(tmp_path, source, fmt, *extra), fmt, SMALL)

    info = validate(data, served)
    assert served == "mp4" and info.detail["codec"] == "h264"
    assert (info.width, info.height, info.detail["fps"]) == (64, 48, 10)
    assert info.detail["frames"] == 15
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    assert info.detail["has_audio"] is False


def test_generated_clips_of_both_containers_come_out_alike() -> None:
    profile = Profile(video_width=256, video_height=256, video_fps=12, video_seconds=2)
    infos = [validate(*normalise(_made(fmt, 3), fmt, profile)) for fmt in ("webm", "mp4")]

    assert {(i.fmt, i.width, i.height, i.detail["frames"]) for i in infos} == {
        ("mp4", 256, 256, 24)
    }


# -- meshes -----------------------------------------------------------------------------------
def test_a_mesh_without_normals_gets_flat_ones_and_keeps_its_triangles() -> None:
    faceted = _made("glb", 1)  # tier 1 ships no normals
    assert "NORMAL" not in _glb_doc(faceted)["meshes"][0]["primitives"][0]["attributes"]

    data, served = normalise(faceted, "glb", SMALL)

    primitive = _glb_doc(data)["meshes"][0]["primitives"][0]
    assert served == "glb"
    assert set(primitive["attributes"]) == {"POSITION", "NORMAL", "COLOR_0"}
    assert validate(data, "glb").detail["triangles"] == validate(faceted, "glb").detail["triangles"]


def test_a_mesh_with_normals_is_left_as_it_is() -> None:
    smooth = _made("glb", 4)

    assert normalise(smooth, "glb", SMALL) == (smooth, "glb")


def test_flat_normals_are_unit_length_and_face_outwards_like_the_winding() -> None:
    data, _ = normalise(_made("glb", 1), "glb", SMALL)
    doc = _glb_doc(data)
    json_len = struct.unpack("<I", data[12:16])[0]
    blob = data[20 + json_len + 8 :]
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]

    def read(index: int) -> np.ndarray:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        return np.frombuffer(blob, "<f4", acc["count"] * 3, start).reshape(-1, 3)

    pos, normals = read(attrs["POSITION"]).reshape(-1, 3, 3), read(attrs["NORMAL"])
    cross = np.cross(pos[:, 1] - pos[:, 0], pos[:, 2] - pos[:, 0])
    real = np.linalg.norm(cross, axis=1) > 1e-9
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert np.all(np.einsum("ij,ij->i", cross[real], normals[::3][real]) > 0)


# -- splats -----------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", [1, 4])  # 5,000 and 15,000 splats, different layouts
def test_every_splat_file_has_the_same_layout_and_count(quality: int) -> None:
    data, served = normalise(_made("ply", quality), "ply", SMALL)

    assert served == "ply"
    assert validate(data, "ply").detail["splats"] == 3000
    assert _ply_properties(data) == [
        "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
        "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip


def test_splats_of_different_counts_come_out_the_same_size() -> None:
    sizes = {len(normalise(_made("ply", q), "ply", SMALL)[0]) for q in (1, 2, 3, 4)}

    assert len(sizes) == 1


def test_padding_splats_are_invisible_and_kept_splats_are_the_most_visible() -> None:
    few = _made("ply", 1)
    padded, _ = normalise(few, "ply", Profile(splat_count=6000))
    cut, _ = normalise(few, "ply", Profile(splat_count=100))

    def body(data: bytes) -> np.ndarray:
        names = _ply_properties(data)
        start = data.index(b"end_header\n") + len(b"end_header\n")
        return np.frombuffer(data, np.dtype([(n, "<f4") for n in names]), offset=start)

    added = body(padded)[5000:]
    assert len(added) == 1000 and np.all(1 / (1 + np.exp(-added["opacity"])) < 1e-9)
    original = body(normalise(few, "ply", Profile(splat_count=5000))[0])
    weight = (1 / (1 + np.exp(-original["opacity"]))) * np.exp(
        original["scale_0"] + original["scale_1"] + original["scale_2"]
    )
    kept = body(cut)
    assert np.sort(kept["x"]).tolist() == np.sort(original["x"][np.argsort(-weight)[:100]]).tolist()


def test_spherical_harmonics_keep_their_bands_per_channel() -> None:
    n, rest = 4, 45  # degree 3: 15 coefficients per channel, channel-major
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", *[f"f_rest_{i}" for i in range(rest)]]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    values = np.zeros((n, len(names)), dtype="<f4")
    for i in range(rest):
        values[:, names.index(f"f_rest_{i}")] = i
    values[:, names.index("rot_0")] = 1
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
        + [f"property float {p}" for p in names]
        + ["end_header", ""]
    ).encode()

    data, _ = normalise(header + values.tobytes(), "ply", Profile(splat_count=n, splat_sh_degree=1))

    names_out = _ply_properties(data)
    start = data.index(b"end_header\n") + len(b"end_header\n")
    out = np.frombuffer(data, np.dtype([(p, "<f4") for p in names_out]), offset=start)
    # Degree 1 keeps the first 3 of each channel's 15: R 0-2, G 15-17, B 30-32.
    assert [float(out[f"f_rest_{i}"][0]) for i in range(9)] == [0, 1, 2, 15, 16, 17, 30, 31, 32]


# -- profiles and bad input -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"image_size": 512}, r"unknown media profile key\(s\) image_size"),
        ({"image_side": 0}, "image_side must be in"),
        ({"video_fps": 12.5}, "video_fps must be a whole number"),
        ({"video_width": 101}, "must be even"),
        ({"splat_count": "many"}, "splat_count must be a number"),
        ({"video_seconds": float("nan")}, "video_seconds must be in"),
        ({"splat_sh_degree": True}, "splat_sh_degree must be a number"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Profile.from_config(config)


def test_an_empty_profile_is_the_default() -> None:
    assert Profile.from_config({}) == Profile.from_config(None) == Profile()


@pytest.mark.parametrize("fmt", ["png", "mp4", "glb", "ply"])
def test_garbage_is_refused_with_a_reason(fmt: str) -> None:
    with pytest.raises(InvalidMedia):
        normalise(b"not a " + fmt.encode() + b" file at all" * 10, fmt, SMALL)


# -- padding ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "quality"), [("png", 1), ("png", 4), ("webp", 2)])
def test_padded_pictures_all_have_one_size_and_the_same_pixels(fmt: str, quality: int) -> None:
    plain, _ = normalise(_made(fmt, quality), fmt, SMALL)
    padded, served = normalise(_made(fmt, quality), fmt, replace(SMALL, pad_bytes=64 * 1024))

    assert len(padded) == 64 * 1024
    validate(padded, served)
    with Image.open(io.BytesIO(plain)) as a, Image.open(io.BytesIO(padded)) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_padded_clips_decode_to_the_same_frames(tmp_path: Path) -> None:
    clip = _clip(tmp_path, "testsrc=size=64x48:rate=10:duration=1.5", "mp4")
    plain, _ = normalise(clip, "mp4", SMALL)
    padded, _ = normalise(clip, "mp4", replace(SMALL, pad_bytes=256 * 1024))

    assert len(padded) == 256 * 1024
    assert validate(padded, "mp4").detail["frames"] == 15
    frames = [
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", "pipe:0",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
            input=data, capture_output=True, check=True,
        ).stdout
        for data in (plain, padded)
    ]  # fmt: skip
    assert frames[0] == frames[1] and len(frames[0]) == 15 * 64 * 48 * 3


@pytest.mark.parametrize("quality", [1, 4])
def test_padded_meshes_keep_their_geometry(quality: int) -> None:
    plain, _ = normalise(_made("glb", quality), "glb", SMALL)
    padded, _ = normalise(_made("glb", quality), "glb", replace(SMALL, pad_bytes=1024 * 1024))

    assert len(padded) == 1024 * 1024
    assert validate(padded, "glb").detail == validate(plain, "glb").detail
    assert _glb_doc(padded) == _glb_doc(plain)


def test_splat_files_are_not_padded_since_their_size_is_fixed_already() -> None:
    plain, _ = normalise(_made("ply", 2), "ply", SMALL)

    assert normalise(_made("ply", 2), "ply", replace(SMALL, pad_bytes=1024 * 1024))[0] == plain


def test_a_file_over_one_multiple_goes_to_the_next() -> None:
    data, _ = normalise(_made("png", 4), "png", replace(SMALL, image_side=512, pad_bytes=4096))

    assert len(data) % 4096 == 0 and len(data) > 4096


def test_a_gap_too_small_for_the_filler_moves_to_the_next_multiple() -> None:
    data, _ = normalise(_made("png", 1), "png", SMALL)
    exact = len(data) + 4 + (-(len(data) + 4) % 4)  # a multiple leaving a 4-byte gap at most
    padded, _ = normalise(_made("png", 1), "png", replace(SMALL, pad_bytes=exact))

    assert len(padded) % exact == 0 and len(padded) >= len(data) + 12
    validate(padded, "png")


def test_a_16_bit_grey_picture_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 96, dtype=np.uint16), (96, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")  # uint16: mode I;16

    data, _ = normalise(buf.getvalue(), "png", SMALL)

    with Image.open(io.BytesIO(data)) as im:
        row = np.asarray(im.convert("L"))[48]
    assert row[0] == 0 and row[-1] == 255 and 100 < row[48] < 155


def test_a_clip_shorter_than_one_frame_still_becomes_a_whole_clip(tmp_path: Path) -> None:
    one_frame = _clip(tmp_path, "testsrc=size=64x48:rate=25:duration=0.04", "mp4")

    data, _ = normalise(one_frame, "mp4", SMALL)

    info = validate(data, "mp4")
    assert info.detail["frames"] == 15 and info.duration_s == pytest.approx(1.5, abs=0.05)
