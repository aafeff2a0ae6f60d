"""Tests for workers.media: format sniffing, validation of untrusted files, metadata stripping.

No Django needed. Fixtures are built in-process (Pillow) or with the bundled ffmpeg binary.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from workers.generators import generate
from workers.media import InvalidMedia, MediaInfo, sniff_format, strip_metadata, validate

MODEL = "SuperModel-XL"  # an identifying string that must never survive stripping
ORG = "AcmeAI Labs"
ALL_FORMATS = ("png", "webp", "jpeg", "mp4", "webm", "glb", "ply")


# -- fixtures ---------------------------------------------------------------------------------
@cache
def sample(fmt: str) -> bytes:
    """A valid file of each format (JPEG via Pillow, the rest from the generators)."""
    if fmt == "jpeg":
        return _jpeg()
    return generate(fmt=fmt, prompt="a red cat", seed=3, quality=2).data


def _pixels() -> Image.Image:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 48 * 32 * 3).reshape(32, 48, 3)
    return Image.fromarray((base + rng.integers(0, 20, base.shape)).clip(0, 255).astype(np.uint8))


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = ORG  # Make
    exif[0x0110] = MODEL  # Model
    exif[0x0131] = f"{MODEL} v2.1"  # Software
    exif[0x0112] = orientation
    return exif


def _xmp() -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        b'02/22-rdf-syntax-ns#"><rdf:Description creatorTool="' + MODEL.encode() + b'"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )


def _jpeg(orientation: int = 1, tagged: bool = False) -> bytes:
    buf = io.BytesIO()
    kwargs: dict = {"quality": 90}
    if tagged:
        kwargs |= {"exif": _exif(orientation).tobytes(), "comment": f"by {ORG}", "xmp": _xmp()}
    _pixels().save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


def _tagged_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"a cat, Steps: 20, Model: {MODEL}")
    info.add_text("Software", ORG, zip=True)
    info.add_itxt("XML:com.adobe.xmp", _xmp().decode())
    buf = io.BytesIO()
    _pixels().save(buf, format="PNG", pnginfo=info, exif=_exif().tobytes())
    return buf.getvalue()


def _tagged_webp() -> bytes:
    buf = io.BytesIO()
    _pixels().save(buf, format="WEBP", quality=90, exif=_exif().tobytes(), xmp=_xmp())
    return buf.getvalue()


def _ffmpeg(tmp_path: Path, name: str, *args: str) -> bytes:
    out = tmp_path / name
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run([*cmd, str(out)], check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def _tagged_video(tmp_path: Path, fmt: str) -> bytes:
    codec = ["-c:v", "libx264", "-preset", "ultrafast"] if fmt == "mp4" else ["-c:v", "libvpx"]
    return _ffmpeg(
        tmp_path,
        f"tagged.{fmt}",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1"),
        *codec,
        *("-pix_fmt", "yuv420p", "-metadata", f"title={MODEL} sample"),
        *("-metadata", f"comment=made by {ORG}", "-metadata", f"artist={ORG}"),
        *("-metadata:s:v:0", f"handler_name={MODEL} handler"),
    )


def _glb_parts(data: bytes) -> tuple[dict, bytes]:
    (json_len,) = struct.unpack("<I", data[12:16])
    doc = json.loads(data[20 : 20 + json_len])
    return doc, data[20 + json_len + 8 :]


def _glb_pack(doc: dict, blob: bytes, extra_chunk: bytes = b"") -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\x00" * (-len(blob) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js
    body += struct.pack("<II", len(blob), 0x004E4942) + blob
    if extra_chunk:
        body += struct.pack("<II", len(extra_chunk), 0x12345678) + extra_chunk
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _glb_positions(data: bytes) -> np.ndarray:
    doc, blob = _glb_parts(data)
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    view = doc["bufferViews"][acc["bufferView"]]
    return np.frombuffer(
        blob, "<f4", acc["count"] * 3, view["byteOffset"] + acc.get("byteOffset", 0)
    )


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# -- sniffing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_it_sniffs_every_supported_format(fmt: str) -> None:
    assert sniff_format(sample(fmt)) == fmt


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "text"),
        (b'{"error": "rate limited"}', "text"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "Matroska"),
        (b"GIF89a\x01\x00\x01\x00", "unrecognised"),
        (bytes(np.random.default_rng(1).integers(0, 256, 512, dtype=np.uint8)), "unrecognised"),
    ],
)
def test_it_refuses_to_sniff_unsupported_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InvalidMedia, match=message):
        sniff_format(data)


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_it_validates_good_files_and_describes_them(fmt: str) -> None:
    info = validate(sample(fmt), fmt)
    assert isinstance(info, MediaInfo)
    assert info.fmt == fmt
    assert info.size_bytes == len(sample(fmt))
    if info.media_type in ("image", "video"):
        assert info.width and info.height
    if info.media_type == "video":
        assert info.duration_s == pytest.approx(2.0, abs=0.1)
        assert info.detail["frames"] == 24
    if fmt == "glb":
        assert info.detail["triangles"] > 0
    if fmt == "ply":
        assert info.detail["splats"] == 8000


def test_it_accepts_format_aliases() -> None:
    assert validate(sample("jpeg"), "JPG").fmt == "jpeg"
    assert validate(sample("png"), ".png").fmt == "png"


def test_it_rejects_unknown_declared_formats() -> None:
    with pytest.raises(InvalidMedia, match="unsupported format"):
        validate(sample("png"), "gif")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_it_rejects_zero_size_files(fmt: str) -> None:
    with pytest.raises(InvalidMedia, match="empty"):
        validate(b"", fmt)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_it_rejects_random_bytes(fmt: str) -> None:
    noise = bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8))
    with pytest.raises(InvalidMedia):
        validate(noise, fmt)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_it_rejects_truncated_files(fmt: str, keep: float) -> None:
    data = sample(fmt)
    with pytest.raises(InvalidMedia):
        validate(data[: int(len(data) * keep)], fmt)


@pytest.mark.parametrize(
    ("actual", "declared"),
    [("png", "webp"), ("webp", "png"), ("jpeg", "png"), ("webm", "mp4"), ("mp4", "webm"),
     ("glb", "ply"), ("ply", "glb"), ("png", "mp4")],
)  # fmt: skip
def test_it_rejects_a_file_of_the_wrong_type(actual: str, declared: str) -> None:
    with pytest.raises(
        InvalidMedia, match=f"declared format is {declared} but the content is {actual}"
    ):
        validate(sample(actual), declared)


def test_it_rejects_images_with_corrupt_pixel_data() -> None:
    png = bytearray(sample("png"))
    idat = png.index(b"IDAT")
    png[idat + 40 : idat + 60] = b"\xff" * 20  # CRC no longer matches
    with pytest.raises(InvalidMedia, match="png image does not decode"):
        validate(bytes(png), "png")


def test_it_rejects_decompression_bombs() -> None:
    png = bytearray(sample("png"))
    # Claim 60000x60000 pixels in IHDR (and fix its CRC so only the size is wrong).
    png[16:24] = struct.pack(">II", 60000, 60000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    with pytest.raises(InvalidMedia):
        validate(bytes(png), "png")


def test_it_rejects_a_video_with_no_frames(tmp_path: Path) -> None:
    empty = _ffmpeg(
        tmp_path,
        "empty.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-frames:v", "0"),
        *("-c:v", "libx264"),
    )
    with pytest.raises(InvalidMedia, match="no readable video stream"):
        validate(empty, "mp4")


def test_it_rejects_an_audio_only_mp4(tmp_path: Path) -> None:
    audio = _ffmpeg(tmp_path, "audio.mp4", "-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac")
    with pytest.raises(InvalidMedia, match="no readable video stream"):
        validate(audio, "mp4")


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_it_rejects_videos_with_corrupted_frames(fmt: str) -> None:
    data = bytearray(sample(fmt))
    rng = np.random.default_rng(5)
    start = len(data) // 4
    for pos in rng.integers(start, len(data) - 16, 60):
        data[pos] ^= 0xFF
    with pytest.raises(InvalidMedia):
        validate(bytes(data), fmt)


def test_it_rejects_matroska_video_codecs_browsers_cannot_play(tmp_path: Path) -> None:
    mpeg4 = _ffmpeg(
        tmp_path,
        "mpeg4.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-c:v", "mpeg4"),
    )
    with pytest.raises(InvalidMedia, match="codec mpeg4"):
        validate(mpeg4, "mp4")


def _glb_with(mutate: Callable[[dict], object]) -> bytes:
    doc, blob = _glb_parts(sample("glb"))
    mutate(doc)
    return _glb_pack(doc, blob)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["asset"].update(version="1.0"), "asset.version"),
        (lambda d: d.pop("meshes"), "no mesh"),
        (lambda d: d["buffers"][0].update(uri="https://tracker.example/model.bin"), "external"),
        (lambda d: d.update(images=[{"uri": "file:///etc/passwd"}]), "external"),
        (lambda d: d["accessors"][0].update(count=10**7), "reads past"),
        (lambda d: d["accessors"][0].update(componentType=5123), "not float VEC3"),
        (lambda d: d["bufferViews"][0].update(byteLength=10**8), "past the end"),
        (lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(POSITION=99), "accessor"),
    ],
)
def test_it_rejects_inconsistent_glb(mutate: Callable[[dict], object], message: str) -> None:
    with pytest.raises(InvalidMedia, match=message):
        validate(_glb_with(mutate), "glb")


def test_it_rejects_glb_with_a_bad_header_or_json() -> None:
    data = sample("glb")
    with pytest.raises(InvalidMedia, match="version"):
        validate(data[:4] + struct.pack("<I", 1) + data[8:], "glb")
    bad_json = data[:20] + b"x" + data[21:]
    with pytest.raises(InvalidMedia, match="JSON"):
        validate(bad_json, "glb")


def _ply_with_header(transform: Callable[[str], str], body_delta: bytes = b"") -> bytes:
    data = sample("ply")
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = transform(data[:end].decode())
    return header.encode() + data[end:] + body_delta


@pytest.mark.parametrize(
    ("transform", "extra", "message"),
    [
        (lambda h: h.replace("property float rot_3\n", ""), b"", "rot_3"),
        (lambda h: h.replace("binary_little_endian", "ascii"), b"", "binary_little_endian"),
        (lambda h: h.replace("binary_little_endian", "binary_big_endian"), b"", "little"),
        (lambda h: h, b"\x00" * 8, "trailing"),
        (lambda h: h.replace("element vertex 8000", "element vertex 8001"), b"", "truncated"),
        (lambda h: h.replace("element vertex 8000", "element vertex 0"), b"", "no vertices"),
        (
            lambda h: h.replace(
                "end_header", "element face 1\nproperty list uchar int idx\nend_header"
            ),
            b"",
            "list property",
        ),
    ],
)
def test_it_rejects_ply_without_a_valid_splat_layout(
    transform: Callable[[str], str], extra: bytes, message: str
) -> None:
    with pytest.raises(InvalidMedia, match=message):
        validate(_ply_with_header(transform, extra), "ply")


def test_it_rejects_ply_with_non_finite_values() -> None:
    data = bytearray(sample("ply"))
    end = data.index(b"end_header\n") + len(b"end_header\n")
    data[end : end + 4] = struct.pack("<f", float("nan"))
    with pytest.raises(InvalidMedia, match="NaN"):
        validate(bytes(data), "ply")


# -- metadata stripping -----------------------------------------------------------------------
def _assert_clean(data: bytes) -> None:
    for needle in (MODEL.encode(), ORG.encode(), b"Exif\x00\x00", b"xmpmeta"):
        assert needle not in data, needle


def test_it_strips_exif_xmp_and_comments_from_jpeg_losslessly() -> None:
    tagged = _jpeg(tagged=True)
    assert MODEL.encode() in tagged and Image.open(io.BytesIO(tagged)).getexif()[0x0110] == MODEL
    clean = strip_metadata(tagged, "jpeg")
    _assert_clean(clean)
    assert validate(clean, "jpeg").fmt == "jpeg"
    assert np.array_equal(_decode(clean), _decode(tagged))  # segments copied, not re-encoded
    assert not Image.open(io.BytesIO(clean)).getexif()


def test_it_applies_exif_rotation_before_dropping_it() -> None:
    tagged = _jpeg(orientation=6, tagged=True)  # "rotate 90 CW to display"
    clean = strip_metadata(tagged, "jpeg")
    _assert_clean(clean)
    with Image.open(io.BytesIO(clean)) as im:
        assert im.size == (32, 48)  # was 48x32 stored sideways
        assert not im.getexif()


def test_it_strips_text_xmp_and_exif_chunks_from_png_losslessly() -> None:
    tagged = _tagged_png()
    assert MODEL.encode() in tagged and b"eXIf" in tagged
    clean = strip_metadata(tagged, "png")
    _assert_clean(clean)
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"):
        assert chunk not in clean
    assert np.array_equal(_decode(clean), _decode(tagged))
    validate(clean, "png")


def test_it_keeps_png_transparency_and_colour_profile() -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (10, 20, 30, 128)).save(buf, format="PNG", icc_profile=icc)
    clean = strip_metadata(buf.getvalue(), "png")
    with Image.open(io.BytesIO(clean)) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0)) == (10, 20, 30, 128)
        assert im.info.get("icc_profile") == icc


def test_it_strips_exif_and_xmp_from_webp() -> None:
    tagged = _tagged_webp()
    assert MODEL.encode() in tagged
    clean = strip_metadata(tagged, "webp")
    _assert_clean(clean)
    assert b"EXIF" not in clean and b"XMP " not in clean
    assert np.array_equal(_decode(clean), _decode(tagged))
    validate(clean, "webp")
    if clean[12:16] == b"VP8X":
        assert clean[20] & 0x0C == 0  # EXIF/XMP flags cleared


def test_it_neutralises_glb_asset_names_and_extras() -> None:
    doc, blob = _glb_parts(sample("glb"))
    doc["asset"].update(generator=f"{MODEL} exporter", copyright=f"(c) {ORG}")
    doc["asset"]["extras"] = {"model": MODEL}
    doc["nodes"][0].update(name=f"{MODEL}_output", extras={"org": ORG})
    doc["meshes"][0]["name"] = MODEL
    doc["materials"][0]["name"] = ORG
    doc["scenes"][0]["extras"] = {"prompt_by": ORG}
    tagged = _glb_pack(doc, blob, extra_chunk=MODEL.encode() + b"...")
    validate(tagged, "glb")
    clean = strip_metadata(tagged, "glb")
    _assert_clean(clean)
    new_doc, _ = _glb_parts(clean)
    assert new_doc["asset"] == {"version": "2.0", "generator": "arena"}
    assert '"extras"' not in json.dumps(new_doc) and '"name"' not in json.dumps(new_doc)
    assert np.array_equal(_glb_positions(clean), _glb_positions(sample("glb")))
    validate(clean, "glb")


def test_it_strips_images_embedded_in_glb_and_repacks_the_buffer() -> None:
    doc, blob = _glb_parts(sample("glb"))
    png = _tagged_png()
    # Put the image first so every other buffer view has to move when it shrinks.
    shift = len(png) + (-len(png) % 4)
    for view in doc["bufferViews"]:
        view["byteOffset"] += shift
    doc["bufferViews"].append({"buffer": 0, "byteOffset": 0, "byteLength": len(png)})
    doc["images"] = [{"bufferView": len(doc["bufferViews"]) - 1, "mimeType": "image/png"}]
    blob = png + b"\x00" * (shift - len(png)) + blob
    doc["buffers"][0]["byteLength"] = len(blob)
    tagged = _glb_pack(doc, blob)
    validate(tagged, "glb")
    clean = strip_metadata(tagged, "glb")
    _assert_clean(clean)
    validate(clean, "glb")
    assert np.array_equal(_glb_positions(clean), _glb_positions(sample("glb")))
    new_doc, new_blob = _glb_parts(clean)
    view = new_doc["bufferViews"][new_doc["images"][0]["bufferView"]]
    embedded = new_blob[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    assert np.array_equal(_decode(embedded), _decode(png))


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_it_strips_title_and_encoder_tags_from_videos(tmp_path: Path, fmt: str) -> None:
    tagged = _tagged_video(tmp_path, fmt)
    assert MODEL.encode() in tagged
    if fmt == "mp4":
        assert b"x264" in tagged  # x264 writes its banner into an SEI message
    clean = strip_metadata(tagged, fmt)
    _assert_clean(clean)
    for needle in (b"x264", b"Lavc", b"libvpx", b"title", b"TITLE", b"handler"):
        assert needle not in clean, needle
    before, after = validate(tagged, fmt), validate(clean, fmt)
    assert after.detail["frames"] == before.detail["frames"] == 10
    assert (after.width, after.height) == (64, 64)


def test_it_keeps_audio_but_drops_cover_art_when_stripping(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    cover.write_bytes(_tagged_png())
    tagged = _ffmpeg(
        tmp_path,
        "av.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1"),
        *("-f", "lavfi", "-i", "sine=duration=1", "-i", str(cover)),
        *("-map", "0", "-map", "1", "-map", "2", "-c:v:0", "libx264", "-c:v:1", "png"),
        *("-disposition:v:1", "attached_pic", "-c:a", "aac"),
        *("-metadata", f"title={MODEL}"),
    )
    before = validate(tagged, "mp4")
    assert before.detail["has_audio"] and before.detail["frames"] == 10
    clean = strip_metadata(tagged, "mp4")
    _assert_clean(clean)
    after = validate(clean, "mp4")
    assert after.detail["has_audio"] and after.detail["frames"] == 10
    assert b"\x89PNG" not in clean  # the cover image is gone


def test_it_removes_ply_header_comments() -> None:
    data = sample("ply")
    tagged = data.replace(
        b"format binary_little_endian 1.0\n",
        f"format binary_little_endian 1.0\ncomment Generated by {MODEL}\nobj_info {ORG}\n".encode(),
        1,
    )
    validate(tagged, "ply")
    clean = strip_metadata(tagged, "ply")
    _assert_clean(clean)
    assert clean == data


def test_it_refuses_to_strip_a_file_of_another_type() -> None:
    with pytest.raises(InvalidMedia, match="declared format is webp"):
        strip_metadata(sample("png"), "webp")


@pytest.mark.parametrize("fmt", ["png", "webp", "glb", "ply"])
def test_it_strips_idempotently(fmt: str) -> None:
    once = strip_metadata(sample(fmt), fmt)
    assert strip_metadata(once, fmt) == once


@pytest.mark.parametrize("fmt", ["png", "webp", "glb", "ply"])
def test_it_leaves_builtin_generator_output_unchanged(fmt: str) -> None:
    # The built-in generators already write clean files; stripping them is a no-op.
    assert strip_metadata(sample(fmt), fmt) == sample(fmt)
