"""Validation and metadata stripping for media files before they are stored or served.

Files may come from untrusted remote generators, so everything here treats input as hostile:
format is decided from magic bytes (never from the declared name alone), images are fully
decoded with decompression-bomb protection, videos are fully decoded by ffmpeg with errors
surfaced, glTF and PLY containers are parsed and bounds-checked.

Typical use (validate the bytes that will actually be served)::

    clean = strip_metadata(data, fmt)
    info = validate(clean, fmt)

Pure Python (+ Pillow, numpy and the ffmpeg binary from ``imageio-ffmpeg``); no Django.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "FORMATS",
    "InvalidMedia",
    "MediaInfo",
    "normalise_format",
    "sniff_format",
    "strip_metadata",
    "validate",
]

FORMATS: tuple[str, ...] = ("png", "webp", "jpeg", "mp4", "webm", "glb", "ply")
MEDIA_TYPE: dict[str, str] = {
    "png": "image",
    "webp": "image",
    "jpeg": "image",
    "mp4": "video",
    "webm": "video",
    "glb": "mesh",
    "ply": "splat",
}
_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "m4v": "mp4"}

# Limits that keep validation cheap and bound the work an untrusted file can cause.
MAX_BYTES = 200 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_FRAMES = 1_000
MAX_VIDEO_SECONDS = 300.0
FFMPEG_TIMEOUT_S = 120

# Codecs a browser can play in each container.
_VIDEO_CODECS = {"mp4": {"h264", "hevc", "av1", "vp9"}, "webm": {"vp8", "vp9", "av1"}}
# ISO-BMFF brands that are still images (AVIF/HEIF), not videos.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
_PIL_FORMAT = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}

# 3DGS splat properties a viewer needs; normals (nx, ny, nz) are optional (3DGS writes zeros
# and several exporters omit them).
SPLAT_REQUIRED = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip

_GLB_MAGIC, _GLB_JSON, _GLB_BIN = b"glTF", 0x4E4F534A, 0x004E4942
NEUTRAL_GENERATOR = "arena"


class InvalidMedia(ValueError):
    """The bytes are not a valid, servable file of the declared format.

    The message is human-readable and says what is wrong (suitable for logs and for an
    operator looking at a failed remote generation).
    """


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`validate` learned about a file.

    ``width``/``height`` for images and videos, ``duration_s`` for videos; ``detail`` holds
    format-specific facts (codec, frame count, vertex/splat counts, bounds...).
    """

    media_type: str
    fmt: str
    width: int | None
    height: int | None
    duration_s: float | None
    size_bytes: int
    detail: dict[str, Any] = field(default_factory=dict)


def normalise_format(fmt: str) -> str:
    """Canonical format name: lower case, no leading dot, ``jpg`` -> ``jpeg``.

    Raises InvalidMedia for formats this module does not handle.
    """
    if not isinstance(fmt, str):
        raise InvalidMedia(f"format must be a string, got {type(fmt).__name__}")
    name = fmt.strip().lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise InvalidMedia(f"unsupported format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return name


def sniff_format(data: bytes) -> str:
    """Identify the format from magic bytes: png, webp, jpeg, mp4, webm, glb or ply.

    Raises InvalidMedia for empty input and for anything else (with a hint when the bytes
    look like text, e.g. an HTML error page returned by a remote generator).
    """
    if not data:
        raise InvalidMedia("file is empty (0 bytes)")
    head = bytes(data[:64])
    fmt = _sniff_image(head) or _sniff_video(head) or _sniff_3d(head)
    if fmt:
        return fmt
    stripped = head.lstrip()
    if stripped[:1] in (b"<", b"{", b"["):
        raise InvalidMedia(f"file looks like text (HTML/XML/JSON), not media: {stripped[:40]!r}")
    raise InvalidMedia(f"unrecognised file type (first bytes: {head[:8].hex(' ')})")


def _sniff_image(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _sniff_video(head: bytes) -> str | None:
    """mp4 (ISO media that is not a still image) or webm (EBML with a WebM doctype); other
    files of these container families are refused."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            raise InvalidMedia(
                f"ISO media file with brand {brand.decode('latin-1')!r} is a still image "
                "(AVIF/HEIF), which is not supported"
            )
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head:
            return "webm"
        if b"matroska" in head:
            raise InvalidMedia("file is Matroska (.mkv), not WebM")
        raise InvalidMedia("EBML file without a WebM doctype")
    return None


def _sniff_3d(head: bytes) -> str | None:
    if head.startswith(_GLB_MAGIC):
        return "glb"
    if head.startswith((b"ply\n", b"ply\r\n")):
        return "ply"
    return None


def validate(data: bytes, fmt: str) -> MediaInfo:
    """Check that ``data`` is a complete, decodable file of format ``fmt`` and describe it.

    * the declared format must match the sniffed one (a PNG named .webp is rejected);
    * images decode fully (all frames of animations), within pixel limits;
    * videos are fully decoded by ffmpeg: at least one video frame, a positive duration,
      a frame size, a browser-playable codec and no decoder errors (truncation shows up as
      "partial file"/"Invalid NAL unit size" errors);
    * GLB: header (magic, version 2, total length), JSON chunk, ``asset.version`` 2.x, at
      least one mesh primitive with float VEC3 positions, every buffer view within its buffer,
      no external (non-``data:``) URIs (a served asset must be self-contained);
    * PLY: binary little-endian with a ``vertex`` element holding the 3DGS splat properties,
      body length exactly matching the header, finite values.

    Raises InvalidMedia with a human-readable reason.
    """
    data = bytes(data)
    fmt = normalise_format(fmt)
    if not data:
        raise InvalidMedia("file is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise InvalidMedia(f"file is {len(data)} bytes, over the {MAX_BYTES} byte limit")
    actual = sniff_format(data)
    if actual != fmt:
        raise InvalidMedia(f"declared format is {fmt} but the content is {actual}")
    kind = MEDIA_TYPE[fmt]
    if kind == "image":
        return _validate_image(data, fmt)
    if kind == "video":
        return _validate_video(data, fmt)
    if kind == "mesh":
        return _validate_glb(data)
    return _validate_ply(data)


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """Return a copy of ``data`` without identifying metadata; pixels/geometry unchanged.

    * PNG/WebP/JPEG: container-level copy keeping only chunks/segments needed to render
      (drops EXIF, XMP, text chunks, comments, IPTC, C2PA/JUMBF, timestamps, thumbnails,
      trailing data); lossless. Only if EXIF asks for a rotation is the image re-encoded
      upright, because dropping the tag would otherwise display it rotated.
    * GLB: ``asset`` reduced to version (+ minVersion) and a neutral generator, copyright
      removed, every ``extras`` removed, ``name`` cleared on all top-level objects, embedded
      images stripped too, unreferenced bytes and unknown chunks dropped.
    * MP4/WebM: remuxed by ffmpeg without global/stream/chapter metadata or encoder tags,
      keeping only video and audio streams; H.264/HEVC SEI messages (which carry encoder
      banners) are removed.
    * PLY: ``comment`` and ``obj_info`` header lines removed.

    The result is not re-validated; pass it to :func:`validate`. Raises InvalidMedia when
    the data cannot be parsed as ``fmt``.
    """
    data = bytes(data)
    fmt = normalise_format(fmt)
    actual = sniff_format(data)
    if actual != fmt:
        raise InvalidMedia(f"declared format is {fmt} but the content is {actual}")
    try:
        if fmt in ("png", "webp", "jpeg"):
            return _strip_image(data, fmt)
        if fmt in ("mp4", "webm"):
            return _strip_video(data, fmt)
        if fmt == "glb":
            return _strip_glb(data)
        return _strip_ply(data)
    except InvalidMedia:
        raise
    except (ValueError, KeyError, IndexError, TypeError, struct.error, OSError) as exc:
        raise InvalidMedia(f"cannot parse {fmt} to strip metadata: {exc}") from exc


# == images ===================================================================================
def _open_image(data: bytes, fmt: str) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])


def _validate_image(data: bytes, fmt: str) -> MediaInfo:
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; make it fatal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_image(data, fmt) as im:
                im.verify()  # structural checks (PNG chunk CRCs...) without decoding
            with _open_image(data, fmt) as im:
                width, height = im.size
                if width < 1 or height < 1:
                    raise InvalidMedia(f"{fmt} image has an empty size {width}x{height}")
                if width * height > MAX_IMAGE_PIXELS:
                    raise InvalidMedia(
                        f"{fmt} image is {width}x{height}, over {MAX_IMAGE_PIXELS} pixels"
                    )
                frames = int(getattr(im, "n_frames", 1))
                if frames > MAX_IMAGE_FRAMES:
                    raise InvalidMedia(f"{fmt} animation has {frames} frames (too many)")
                mode = im.mode
                for index in range(frames):
                    im.seek(index)
                    im.load()  # full decode: catches truncated/corrupt pixel data
    except InvalidMedia:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        struct.error,
        zlib.error,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise InvalidMedia(f"{fmt} image does not decode: {exc or type(exc).__name__}") from exc
    return MediaInfo(
        media_type="image",
        fmt=fmt,
        width=width,
        height=height,
        duration_s=None,
        size_bytes=len(data),
        detail={"mode": mode, "frames": frames, "animated": frames > 1},
    )


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each PNG chunk up to IEND; raises on truncation or bad CRC."""
    pos, chunks = 8, []
    while True:
        if pos + 12 > len(data):
            raise InvalidMedia("png is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise InvalidMedia(f"png chunk {ctype!r} is truncated")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + payload) != crc:
            raise InvalidMedia(f"png chunk {ctype!r} has a bad CRC")
        chunks.append((ctype, payload))
        pos = end + 4
        if ctype == b"IEND":
            return chunks  # anything after IEND is dropped


# PNG chunks needed to render correctly (incl. APNG animation and colour management).
_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"sRGB", b"sBIT",
    b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT", b"iCCP", b"cICP", b"mDCV", b"cLLI",
}  # fmt: skip


def _strip_png(data: bytes) -> bytes:
    out = [data[:8]]
    for ctype, payload in _png_chunks(data):
        if ctype not in _PNG_KEEP:
            continue
        if ctype == b"iCCP":
            # The profile name is free text; keep the (compressed) profile itself.
            _, sep, rest = payload.partition(b"\x00")
            if not sep:
                continue
            payload = b"ICC profile\x00" + rest
        out.append(struct.pack(">I4s", len(payload), ctype) + payload)
        out.append(struct.pack(">I", zlib.crc32(ctype + payload)))
    return b"".join(out)


_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def _strip_webp(data: bytes) -> bytes:
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    pos, out = 12, []
    while pos + 8 <= end:
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + size]
        if len(payload) != size:
            raise InvalidMedia(f"webp chunk {fourcc!r} is truncated")
        if fourcc in _WEBP_KEEP:
            if fourcc == b"VP8X" and size >= 1:
                # Clear the EXIF (0x08) and XMP (0x04) presence flags: those chunks go.
                payload = bytes([payload[0] & ~0x0C]) + payload[1:]
            out.append(struct.pack("<4sI", fourcc, size) + payload + b"\x00" * (size & 1))
        pos += 8 + size + (size & 1)
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _strip_jpeg(data: bytes) -> bytes:
    out, pos = [b"\xff\xd8"], 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise InvalidMedia("jpeg is truncated or malformed before the image data")
        # A marker may be preceded by any number of 0xFF fill bytes.
        while pos + 2 < len(data) and data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers carry no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos : pos + 2 + length]
        if len(segment) != 2 + length:
            raise InvalidMedia("jpeg segment is truncated")
        if marker == 0xDA:  # start of scan: copy entropy data up to the end-of-image marker
            eoi = data.find(b"\xff\xd9", pos + 2 + length)
            if eoi < 0:
                raise InvalidMedia("jpeg is truncated (no end-of-image marker)")
            out.append(data[pos : eoi + 2])  # trailers (e.g. appended videos) are dropped
            return b"".join(out)
        payload = segment[4:]
        keep = (
            (marker == 0xE0 and payload.startswith(b"JFIF\x00"))  # not JFXX thumbnails
            or (marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"))
            or (marker == 0xEE and payload.startswith(b"Adobe"))  # colour transform flag
            or not (0xE0 <= marker <= 0xEF or marker == 0xFE)  # tables, frame headers, DRI
        )
        if keep:
            out.append(segment)
        pos += 2 + length


def _exif_rotation(data: bytes, fmt: str) -> int:
    """EXIF orientation (1 = upright) of an image; 1 when absent or unreadable."""
    try:
        with _open_image(data, fmt) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except (OSError, ValueError, SyntaxError, struct.error, TypeError):
        return 1


def _reencode_upright(data: bytes, fmt: str) -> bytes:
    """Apply EXIF orientation to the pixels and re-encode without any metadata."""
    with _open_image(data, fmt) as im:
        lossless = bool(im.info.get("lossless", False))
        upright = ImageOps.exif_transpose(im)
        # Pillow re-emits info entries (comment, exif, dpi...) on save; keep only those that
        # affect rendering.
        upright.info = {k: v for k, v in im.info.items() if k in ("transparency", "icc_profile")}
        buf = io.BytesIO()
        if fmt == "png":
            upright.save(buf, format="PNG")
        elif fmt == "webp":
            upright.save(buf, format="WEBP", lossless=lossless, quality=95)
        else:
            upright.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _strip_image(data: bytes, fmt: str) -> bytes:
    if _exif_rotation(data, fmt) not in (0, 1):
        return _reencode_upright(data, fmt)
    if fmt == "png":
        return _strip_png(data)
    if fmt == "webp":
        return _strip_webp(data)
    return _strip_jpeg(data)


# == video ====================================================================================
def _ffmpeg(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", *args]
    try:
        return subprocess.run(
            cmd, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidMedia(f"ffmpeg took longer than {FFMPEG_TIMEOUT_S}s on this file") from exc


_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #0:\d+.*?: Video: (\w+)(.*)")
_SIZE_RE = re.compile(r", (\d+)x(\d+)")
_FPS_RE = re.compile(r"([\d.]+) fps")
_LEVEL_RE = re.compile(r"\[(error|fatal|panic)\] (.*)")


def _probe(path: Path, decode: bool) -> dict[str, Any]:
    """Run ffmpeg on ``path``; with ``decode`` also decode every frame of the first video
    stream. Returns parsed facts and the error lines ffmpeg logged."""
    args = ["-nostdin", "-loglevel", "level+info", "-i", str(path)]
    if decode:
        # 0:V = video that is not an attached picture (cover art); passthrough counts decoded
        # frames without duplicating/dropping them to a constant rate.
        args += ["-map", "0:V:0", "-fps_mode", "passthrough", "-f", "null"]
        args += ["-progress", "pipe:1", "-nostats", "-"]
    proc = _ffmpeg(args)
    log = proc.stderr.decode("utf-8", "replace")
    facts: dict[str, Any] = {"returncode": proc.returncode, "errors": [], "codec": None}
    input_section = log.split("Stream mapping:")[0]
    for line in log.splitlines():
        level = _LEVEL_RE.search(line)
        # Without an output, ffmpeg always ends with this; it says nothing about the file.
        if level and "output file must be specified" not in line:
            facts["errors"].append(level.group(2).strip())
    if m := _DURATION_RE.search(input_section):
        h, mnt, sec = m.groups()
        facts["duration"] = int(h) * 3600 + int(mnt) * 60 + float(sec)
    videos = [m for m in _VIDEO_RE.finditer(input_section) if "(attached pic)" not in m.group(0)]
    if videos:
        m = videos[0]
        facts["codec"] = m.group(1)
        rest = m.group(2)
        if size := _SIZE_RE.search(rest):
            facts["width"], facts["height"] = int(size.group(1)), int(size.group(2))
        if fps := _FPS_RE.search(rest):
            facts["fps"] = float(fps.group(1))
        facts["has_audio"] = ": Audio: " in input_section
    if decode:
        frames = re.findall(r"^frame=(\d+)", proc.stdout.decode("ascii", "replace"), re.M)
        facts["frames"] = int(frames[-1]) if frames else 0
    return facts


def _validate_video(data: bytes, fmt: str) -> MediaInfo:
    with tempfile.TemporaryDirectory(prefix="arena-media-") as tmp:
        path = Path(tmp) / f"input.{fmt}"
        path.write_bytes(data)
        facts = _probe(path, decode=False)
        if facts["codec"] is None:
            why = f": {facts['errors'][0]}" if facts["errors"] else ""
            raise InvalidMedia(f"{fmt} has no readable video stream{why}")
        duration = facts.get("duration")
        if duration is not None and duration > MAX_VIDEO_SECONDS:
            raise InvalidMedia(f"{fmt} lasts {duration:.1f}s, over {MAX_VIDEO_SECONDS:.0f}s")
        facts = _probe(path, decode=True)
    codec = facts["codec"]
    if facts["errors"]:
        raise InvalidMedia(f"{fmt} does not decode cleanly: {facts['errors'][0]}")
    if facts["returncode"] != 0:
        raise InvalidMedia(f"{fmt} could not be decoded (ffmpeg exit {facts['returncode']})")
    if codec not in _VIDEO_CODECS[fmt]:
        raise InvalidMedia(f"{fmt} uses codec {codec}, which browsers cannot play in {fmt}")
    if not facts.get("width") or not facts.get("height"):
        raise InvalidMedia(f"{fmt} video stream has no frame size")
    if facts["frames"] < 1:
        raise InvalidMedia(f"{fmt} has no video frames")
    duration = facts.get("duration")
    if not duration and facts.get("fps"):
        duration = facts["frames"] / facts["fps"]
    if not duration or duration <= 0:
        raise InvalidMedia(f"{fmt} has no duration")
    return MediaInfo(
        media_type="video",
        fmt=fmt,
        width=facts["width"],
        height=facts["height"],
        duration_s=round(float(duration), 3),
        size_bytes=len(data),
        detail={
            "codec": codec,
            "frames": facts["frames"],
            "fps": facts.get("fps"),
            "has_audio": facts.get("has_audio", False),
        },
    )


def _strip_video(data: bytes, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="arena-media-") as tmp:
        src, dst = Path(tmp) / f"in.{fmt}", Path(tmp) / f"out.{fmt}"
        src.write_bytes(data)
        codec = _probe(src, decode=False)["codec"]
        if codec is None:
            raise InvalidMedia(f"{fmt} has no readable video stream")
        args = ["-nostdin", "-loglevel", "error", "-y", "-i", str(src)]
        # Capital V: video streams that are not attached pictures (cover art could carry a
        # logo); subtitles/data/timecode tracks are dropped.
        args += ["-map", "0:V", "-map", "0:a?", "-c", "copy"]
        args += ["-map_metadata", "-1", "-map_chapters", "-1"]
        args += ["-metadata:s:v", "encoder=", "-metadata:s:a", "encoder="]
        args += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
        if codec == "h264":
            args += ["-bsf:v", "filter_units=remove_types=6"]  # SEI, incl. x264's banner
        elif codec == "hevc":
            args += ["-bsf:v", "filter_units=remove_types=39|40"]  # prefix/suffix SEI
        if fmt == "mp4":
            args += ["-movflags", "+faststart"]
        args += ["-f", fmt, str(dst)]
        proc = _ffmpeg(args)
        if proc.returncode != 0 or not dst.exists():
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise InvalidMedia(f"{fmt} could not be remuxed: {' '.join(tail) or 'ffmpeg failed'}")
        return dst.read_bytes()


# == glTF binary ==============================================================================
@dataclass
class _Glb:
    doc: dict[str, Any]
    bin: bytes | None


def _parse_glb(data: bytes) -> _Glb:
    length = _check_glb_header(data)
    chunks = _glb_chunks(data, length)
    if not chunks or chunks[0][0] != _GLB_JSON:
        raise InvalidMedia("glb does not start with a JSON chunk")
    doc = _glb_json(chunks[0][1])
    blob = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == _GLB_BIN else None
    return _Glb(doc, blob)


def _check_glb_header(data: bytes) -> int:
    """Check the 12-byte GLB header against the data; returns the total length."""
    if len(data) < 20:
        raise InvalidMedia("glb is truncated (shorter than its headers)")
    magic, version, length = struct.unpack("<4sII", data[:12])
    if magic != _GLB_MAGIC:
        raise InvalidMedia("glb has a bad magic number")
    if version != 2:
        raise InvalidMedia(f"glb container version is {version}, only 2 is supported")
    if length != len(data):
        raise InvalidMedia(f"glb header says {length} bytes but the file has {len(data)}")
    return int(length)


def _glb_chunks(data: bytes, length: int) -> list[tuple[int, bytes]]:
    """(type, payload) of every chunk after the header, bounds-checked."""
    pos, chunks = 12, []
    while pos < length:
        if pos + 8 > length:
            raise InvalidMedia("glb chunk header is truncated")
        clen, ctype = struct.unpack("<II", data[pos : pos + 8])
        if pos + 8 + clen > length:
            raise InvalidMedia("glb chunk is truncated")
        chunks.append((ctype, data[pos + 8 : pos + 8 + clen]))
        pos += 8 + clen
    return chunks


def _glb_json(payload: bytes) -> dict[str, Any]:
    """The JSON chunk's document, which must be an object."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMedia(f"glb JSON chunk is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidMedia("glb JSON chunk is not an object")
    return doc


def _items(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidMedia(f"glb '{key}' must be a list of objects")
    return value


_COMPONENT_SIZE = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_SIZE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


def _validate_glb(data: bytes) -> MediaInfo:
    glb = _parse_glb(data)
    doc = glb.doc
    asset = doc.get("asset")
    if not isinstance(asset, dict) or not str(asset.get("version", "")).startswith("2."):
        raise InvalidMedia("glb asset.version must be 2.x")
    buffers, views = _items(doc, "buffers"), _items(doc, "bufferViews")
    accessors, meshes = _items(doc, "accessors"), _items(doc, "meshes")
    buffer_sizes = _glb_buffer_sizes(buffers, glb.bin)
    _check_glb_images(_items(doc, "images"))
    _check_glb_views(views, buffer_sizes)
    primitives, vertices, triangles = _glb_geometry(meshes, accessors, views)
    if primitives == 0 or vertices == 0:
        raise InvalidMedia("glb contains no mesh with vertex positions")
    return MediaInfo(
        media_type="mesh",
        fmt="glb",
        width=None,
        height=None,
        duration_s=None,
        size_bytes=len(data),
        detail={
            "meshes": len(meshes),
            "primitives": primitives,
            "vertices": vertices,
            "triangles": triangles,
            "materials": len(doc.get("materials", [])),
            "textures": len(doc.get("textures", [])),
            "extensions_required": list(doc.get("extensionsRequired", [])),
            "generator": asset.get("generator"),
        },
    )


def _glb_buffer_sizes(buffers: list[dict[str, Any]], blob: bytes | None) -> list[int]:
    """Declared byte length of each buffer. Only ``data:`` URIs or, for buffer 0, the BIN
    chunk (at least as long as declared) may back a buffer."""
    buffer_sizes = []
    for i, buf in enumerate(buffers):
        uri = buf.get("uri")
        if uri is not None and not str(uri).startswith("data:"):
            raise InvalidMedia(f"glb buffer {i} references an external file ({uri!r})")
        if uri is None:
            if i != 0 or blob is None:
                raise InvalidMedia(f"glb buffer {i} has no data (missing BIN chunk)")
            if int(buf.get("byteLength", -1)) > len(blob):
                raise InvalidMedia("glb BIN chunk is shorter than buffer 0's byteLength")
        buffer_sizes.append(int(buf.get("byteLength", 0)))
    return buffer_sizes


def _check_glb_images(images: list[dict[str, Any]]) -> None:
    """Images must be embedded (buffer view or ``data:`` URI), never external files."""
    for i, img in enumerate(images):
        uri = img.get("uri")
        if uri is not None and not str(uri).startswith("data:"):
            raise InvalidMedia(f"glb image {i} references an external file ({uri!r})")


def _check_glb_views(views: list[dict[str, Any]], buffer_sizes: list[int]) -> None:
    """Every buffer view lies within an existing buffer."""
    for i, view in enumerate(views):
        b = view.get("buffer")
        if not isinstance(b, int) or not 0 <= b < len(buffer_sizes):
            raise InvalidMedia(f"glb bufferView {i} references a missing buffer")
        end = int(view.get("byteOffset", 0)) + int(view.get("byteLength", 0))
        if end > buffer_sizes[b]:
            raise InvalidMedia(f"glb bufferView {i} extends past the end of its buffer")


def _glb_geometry(
    meshes: list[dict[str, Any]], accessors: list[dict[str, Any]], views: list[dict[str, Any]]
) -> tuple[int, int, int]:
    """(primitives, vertices, triangles) over the primitives that have positions, checking
    the accessors they read."""
    vertices = triangles = primitives = 0
    for mesh in meshes:
        for prim in mesh.get("primitives", []):
            attrs = prim.get("attributes", {}) if isinstance(prim, dict) else {}
            if "POSITION" not in attrs:
                continue
            n = _glb_accessor_count(attrs["POSITION"], accessors, views, vec3_float=True)
            primitives += 1
            vertices += n
            idx = (
                _glb_accessor_count(prim["indices"], accessors, views, vec3_float=False)
                if "indices" in prim
                else n
            )
            if prim.get("mode", 4) == 4:
                triangles += idx // 3
    return primitives, vertices, triangles


def _glb_accessor_count(
    index: object,
    accessors: list[dict[str, Any]],
    views: list[dict[str, Any]],
    vec3_float: bool,
) -> int:
    """Element count of accessor ``index`` after checking that it exists, is float VEC3 when
    ``vec3_float`` (positions) and reads within its buffer view."""
    if not isinstance(index, int) or not 0 <= index < len(accessors):
        raise InvalidMedia(f"glb accessor {index!r} does not exist")
    acc = accessors[index]
    count = int(acc.get("count", 0))
    if vec3_float and (acc.get("componentType") != 5126 or acc.get("type") != "VEC3"):
        raise InvalidMedia(f"glb POSITION accessor {index} is not float VEC3")
    if "bufferView" in acc:
        _check_glb_accessor_view(index, acc, count, views)
    return count


def _check_glb_accessor_view(
    index: int, acc: dict[str, Any], count: int, views: list[dict[str, Any]]
) -> None:
    """Accessor ``index`` (``count`` elements) reads only bytes of its existing buffer view."""
    view = views[int(acc["bufferView"])] if int(acc["bufferView"]) < len(views) else None
    if view is None:
        raise InvalidMedia(f"glb accessor {index} references a missing bufferView")
    elem = _COMPONENT_SIZE.get(acc.get("componentType", 0), 0) * _TYPE_SIZE.get(
        acc.get("type", ""), 0
    )
    if not elem:
        raise InvalidMedia(f"glb accessor {index} has an invalid type")
    stride = int(view.get("byteStride", elem))
    need = int(acc.get("byteOffset", 0)) + (stride * (count - 1) + elem if count else 0)
    if need > int(view.get("byteLength", 0)):
        raise InvalidMedia(f"glb accessor {index} reads past its bufferView")


def _drop_extras(node: Any) -> Any:
    """Recursively remove every ``extras`` member (free-form app data)."""
    if isinstance(node, dict):
        return {k: _drop_extras(v) for k, v in node.items() if k != "extras"}
    if isinstance(node, list):
        return [_drop_extras(v) for v in node]
    return node


def _pad4(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def _strip_glb(data: bytes) -> bytes:
    glb = _parse_glb(data)
    doc = _drop_extras(glb.doc)
    doc["asset"] = _neutral_asset(doc)
    _drop_names(doc)
    blob = glb.bin
    if blob is not None:
        blob = _repack_buffer(doc, blob)
    return _pack_glb(doc, blob)


def _neutral_asset(doc: dict[str, Any]) -> dict[str, str]:
    """``asset`` reduced to its version (+ minVersion) and the neutral generator."""
    raw = doc.get("asset")
    asset: dict[str, Any] = raw if isinstance(raw, dict) else {}
    clean_asset = {"version": str(asset.get("version", "2.0")), "generator": NEUTRAL_GENERATOR}
    if "minVersion" in asset:
        clean_asset["minVersion"] = str(asset["minVersion"])
    return clean_asset


def _drop_names(doc: dict[str, Any]) -> None:
    """Remove ``name`` from every top-level object, in place."""
    # Names are optional labels (references are by index) and often leak tool/model names.
    for value in doc.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    item.pop("name", None)


def _repack_buffer(doc: dict[str, Any], blob: bytes) -> bytes:
    """Rebuild buffer 0 view by view (updating the views and its byteLength in ``doc``):
    embedded images get stripped (their sizes change) and bytes no view references are
    dropped."""
    image_views = {
        img["bufferView"] for img in doc.get("images", []) if isinstance(img.get("bufferView"), int)
    }
    new_blob = bytearray()
    for i, view in enumerate(doc.get("bufferViews", [])):
        if view.get("buffer") != 0:
            continue
        start = int(view.get("byteOffset", 0))
        chunk = blob[start : start + int(view["byteLength"])]
        if i in image_views:
            chunk = _strip_embedded_image(chunk)
        new_blob += b"\x00" * (-len(new_blob) % 4)
        view["byteOffset"] = len(new_blob)
        view["byteLength"] = len(chunk)
        new_blob += chunk
    repacked = bytes(new_blob)
    if doc.get("buffers"):
        doc["buffers"][0]["byteLength"] = len(repacked)
    return repacked


def _strip_embedded_image(chunk: bytes) -> bytes:
    """An image embedded in a buffer view, stripped like a standalone one (left as is when it
    is not a PNG/WebP/JPEG)."""
    try:
        kind = sniff_format(chunk)
    except InvalidMedia:
        kind = ""
    if kind in ("png", "webp", "jpeg"):
        chunk = strip_metadata(chunk, kind)
    return chunk


def _pack_glb(doc: dict[str, Any], blob: bytes | None) -> bytes:
    """GLB container: header, JSON chunk (space padded) and the BIN chunk if any (later,
    unknown chunks are dropped)."""
    js = _pad4(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    out = struct.pack("<II", len(js), _GLB_JSON) + js
    if blob is not None:
        blob = _pad4(blob, b"\x00")
        out += struct.pack("<II", len(blob), _GLB_BIN) + blob  # later unknown chunks dropped
    return struct.pack("<4sII", _GLB_MAGIC, 2, 12 + len(out)) + out


# == PLY (3D Gaussian splats) =================================================================
@dataclass
class _PlyHeader:
    length: int
    lines: list[str]
    elements: list[tuple[str, int, list[tuple[str, str]]]]  # name, count, [(prop, dtype)]


def _parse_ply_header(data: bytes) -> _PlyHeader:
    end = _ply_header_end(data)
    try:
        text = data[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidMedia("ply header is not ASCII") from exc
    lines = text.splitlines()
    fmt_lines = [ln for ln in lines if ln.startswith("format ")]
    if not fmt_lines or fmt_lines[0].split()[1:2] != ["binary_little_endian"]:
        raise InvalidMedia("ply must be binary_little_endian (as 3DGS writes it)")
    return _PlyHeader(end, lines, _ply_elements(lines))


def _ply_header_end(data: bytes) -> int:
    """Offset just past the ``end_header`` line (searched in the first 64 KiB)."""
    end = -1
    for terminator in (b"end_header\n", b"end_header\r\n"):
        end = data.find(terminator, 0, 65536)
        if end >= 0:
            end += len(terminator)
            break
    if end < 0:
        raise InvalidMedia("ply header has no end_header line (truncated or not a PLY)")
    return end


def _ply_elements(lines: list[str]) -> list[tuple[str, int, list[tuple[str, str]]]]:
    """The header's elements with their scalar properties: [(name, count, [(prop, dtype)])]."""
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for ln in lines[1:]:
        parts = ln.split()
        if not parts or parts[0] in ("comment", "obj_info", "format", "end_header"):
            continue
        if parts[0] == "element" and len(parts) == 3 and parts[2].isdigit():
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property" and elements:
            elements[-1][2].append(_ply_property(ln, parts, elements[-1][0]))
        else:
            raise InvalidMedia(f"ply header has an unexpected line: {ln!r}")
    return elements


def _ply_property(ln: str, parts: list[str], element: str) -> tuple[str, str]:
    """(name, numpy type code) of a scalar ``property`` line of ``element``."""
    if parts[1] == "list":
        raise InvalidMedia(f"ply element {element!r} has a list property")
    if len(parts) != 3 or parts[1] not in _PLY_TYPES:
        raise InvalidMedia(f"ply header has an invalid property line: {ln!r}")
    return (parts[2], _PLY_TYPES[parts[1]])


def _validate_ply(data: bytes) -> MediaInfo:
    header = _parse_ply_header(data)
    sizes = []
    vertex: tuple[int, np.dtype[Any]] | None = None
    vertex_count = 0
    offset = header.length
    for name, count, props in header.elements:
        names = [p for p, _ in props]
        if len(set(names)) != len(names):
            raise InvalidMedia(f"ply element {name!r} repeats a property name")
        dtype = np.dtype([(p, "<" + t) for p, t in props])
        if name == "vertex" and vertex is None:
            vertex = (offset, dtype)
            vertex_count = count
        sizes.append(count * dtype.itemsize)
        offset += count * dtype.itemsize
    if vertex is None or vertex_count == 0:
        raise InvalidMedia("ply has no vertices (splats)")
    missing = [p for p in SPLAT_REQUIRED if p not in (vertex[1].names or ())]
    if missing:
        raise InvalidMedia(f"ply vertices lack Gaussian-splat properties: {', '.join(missing)}")
    expected = header.length + sum(sizes)
    if len(data) != expected:
        raise InvalidMedia(
            f"ply body is {len(data) - header.length} bytes but the header declares "
            f"{expected - header.length} ({'truncated' if len(data) < expected else 'trailing data'})"
        )
    arr = np.frombuffer(data, dtype=vertex[1], count=vertex_count, offset=vertex[0])
    core = np.stack([arr[p].astype(np.float64) for p in SPLAT_REQUIRED], axis=1)
    bad = int((~np.isfinite(core)).any(axis=1).sum())
    if bad:
        raise InvalidMedia(f"ply has {bad} splats with NaN/infinite values")
    n_rest = sum(1 for p in (vertex[1].names or ()) if p.startswith("f_rest_"))
    xyz = core[:, :3]
    return MediaInfo(
        media_type="splat",
        fmt="ply",
        width=None,
        height=None,
        duration_s=None,
        size_bytes=len(data),
        detail={
            "splats": vertex_count,
            "sh_degree": {0: 0, 9: 1, 24: 2, 45: 3}.get(n_rest),
            "bounds_min": [round(float(v), 4) for v in xyz.min(axis=0)],
            "bounds_max": [round(float(v), 4) for v in xyz.max(axis=0)],
        },
    )


def _strip_ply(data: bytes) -> bytes:
    header = _parse_ply_header(data)
    newline = "\r\n" if data[: header.length].endswith(b"\r\n") else "\n"
    kept = [ln for ln in header.lines if not ln.startswith(("comment", "obj_info"))]
    return (newline.join(kept) + newline).encode("ascii") + data[header.length :]
