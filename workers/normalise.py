"""Normalise an arena's outputs on ingest so that nothing but their content tells models apart.

Every model of an arena is served in one format, one layout and (for pictures and clips) one
frame size, whatever the model wrote:

* images: PNG, ``image_side`` x ``image_side`` pixels (fitted inside the square keeping the
  aspect ratio, transparent padding when it is not square), RGB, or RGBA when the output has
  transparency or padding;
* videos: H.264 MP4 (yuv420p, constant quality), ``video_width`` x ``video_height`` (fitted,
  black padding), ``video_fps`` frames a second, exactly ``video_seconds`` long (longer clips are
  cut, shorter ones hold their last frame), no audio;
* meshes: GLB whose triangle primitives all carry POSITION and NORMAL (a primitive without
  normals gets flat face normals, which is how a viewer shades it anyway, so it looks the same);
* Gaussian splats: PLY with exactly the 3DGS properties x..rot_3 plus ``splat_sh_degree`` bands
  of f_rest, float32, in one order, and exactly ``splat_count`` splats (the least visible ones
  are dropped, or invisible ones are added at the centre).

The result is stripped of metadata like any stored file (:func:`workers.media.strip_metadata`).
Sizes still differ by content (a detailed picture compresses less), and a size seen over the
network (Content-Length) is enough to tell quality tiers apart. With ``pad_bytes`` every served
picture, clip and mesh is padded up to a multiple of that many bytes with bytes every reader
skips (a private PNG chunk, an MP4 ``free`` box, spaces after a GLB's JSON), so files below one
multiple all have the same size. Splat files need none: a fixed count and layout fix their size.

Pure (Pillow, numpy, the ffmpeg binary of ``imageio-ffmpeg``); no Django.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .media import (
    MEDIA_TYPE,
    SPLAT_REQUIRED,
    InvalidMedia,
    _ffmpeg,
    _pack_glb,
    _pad4,
    _parse_glb,
    _parse_ply_header,
    _probe,
    normalise_format,
    strip_metadata,
)

__all__ = ["TARGET_FORMAT", "Profile", "normalise"]

# The one served format per media type.
TARGET_FORMAT = {"image": "png", "video": "mp4", "mesh": "glb", "splat": "ply"}

_LIMITS: dict[str, tuple[float, float]] = {
    "image_side": (16, 4096),
    "video_width": (16, 3840),
    "video_height": (16, 2160),
    "video_fps": (1, 60),
    "video_seconds": (0.5, 60),
    "video_crf": (0, 51),
    "splat_count": (1, 5_000_000),
    "splat_sh_degree": (0, 3),
    "pad_bytes": (0, 64 * 1024 * 1024),
}


@dataclass(frozen=True)
class Profile:
    """What an arena serves. Defaults suit current open models; arenas set their own."""

    image_side: int = 1024
    video_width: int = 512
    video_height: int = 512
    video_fps: int = 24
    video_seconds: float = 4.0
    video_crf: int = 18
    splat_count: int = 200_000
    splat_sh_degree: int = 0
    pad_bytes: int = 0  # 0: no padding; else every served file is a multiple of this size

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = _LIMITS[f.name]
            is_int = f.type in (int, "int")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"media profile {f.name} must be a number, got {value!r}")
            if is_int and value != int(value):
                raise ValueError(f"media profile {f.name} must be a whole number, got {value!r}")
            if not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"media profile {f.name} must be in [{low:g}, {high:g}]")
            object.__setattr__(self, f.name, int(value) if is_int else float(value))
        if self.video_width % 2 or self.video_height % 2:
            raise ValueError("media profile video_width and video_height must be even (4:2:0)")
        if self.pad_bytes % 4 or 0 < self.pad_bytes < 1024:
            raise ValueError("media profile pad_bytes must be 0 or a multiple of 4 from 1024")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Profile:
        """The profile an arena's ``media_profile`` JSON describes (missing keys: defaults).

        Raises ValueError naming the key for unknown keys and bad values."""
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(config) - known):
            raise ValueError(
                f"unknown media profile key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return replace(cls(), **config)


def normalise(data: bytes, fmt: str, profile: Profile) -> tuple[bytes, str]:
    """``data`` (a stripped, validated file of ``fmt``) in the arena's one served form.

    Returns (bytes, format). Raises InvalidMedia when the file cannot be converted."""
    fmt = normalise_format(fmt)
    kind = MEDIA_TYPE[fmt]
    try:
        if kind == "image":
            out = _image(data, profile)
        elif kind == "video":
            out = _video(data, fmt, profile)
        elif kind == "mesh":
            out = _mesh(data)
        else:
            out = _splat(data, profile)
    except InvalidMedia:
        raise
    except (ValueError, KeyError, IndexError, TypeError, struct.error, OSError) as exc:
        raise InvalidMedia(f"cannot normalise this {fmt}: {exc}") from exc
    target = TARGET_FORMAT[kind]
    return pad(strip_metadata(out, target), target, profile.pad_bytes), target


# == padding ==================================================================================
_PNG_PAD = b"paDd"  # ancillary, private, safe to copy: decoders skip it (PNG 1.2, 3.3)


def pad(data: bytes, fmt: str, multiple: int) -> bytes:
    """``data`` grown to the next multiple of ``multiple`` bytes (0: unchanged) with filler
    every reader of ``fmt`` skips; a gap too small for the filler's own header moves to the
    multiple after."""
    if multiple <= 0 or fmt == "ply":  # a splat file's size is fixed by its count already
        return data
    minimum = {"png": 12, "mp4": 8, "glb": 0}[fmt]
    gap = -len(data) % multiple
    while gap and gap < minimum:
        gap += multiple
    if gap == 0:
        return data
    if fmt == "png":  # before IEND, the last 12 bytes
        body = b"\x00" * (gap - 12)
        chunk = struct.pack(">I", len(body)) + _PNG_PAD + body
        chunk += struct.pack(">I", zlib.crc32(_PNG_PAD + body) & 0xFFFFFFFF)
        return data[:-12] + chunk + data[-12:]
    if fmt == "mp4":  # a top-level free box at the end
        return data + struct.pack(">I", gap) + b"free" + b"\x00" * (gap - 8)
    # glb: JSON may end in any amount of whitespace; the chunks stay 4-aligned
    json_len = struct.unpack("<I", data[12:16])[0]
    end = 20 + json_len
    out = bytearray(data[:end] + b" " * gap + data[end:])
    struct.pack_into("<I", out, 8, len(out))
    struct.pack_into("<I", out, 12, json_len + gap)
    return bytes(out)


# == images ===================================================================================
def _image(data: bytes, profile: Profile) -> bytes:
    side = profile.image_side
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(0)  # an animation's first frame: arenas compare still pictures
        im: Image.Image = ImageOps.exif_transpose(opened) or opened
        if im.mode == "I" or im.mode.startswith("I;16"):  # 16-bit grey: scale, don't clip
            im = im.convert("I").point(lambda v: v / 257).convert("L")
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        picture = im.convert("RGBA" if has_alpha else "RGB")
    picture = ImageOps.contain(picture, (side, side), Image.Resampling.LANCZOS)
    if picture.size != (side, side):
        frame = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        frame.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
        picture = frame
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# == videos ===================================================================================
def _video(data: bytes, fmt: str, profile: Profile) -> bytes:
    w, h, fps, seconds = (
        profile.video_width,
        profile.video_height,
        profile.video_fps,
        profile.video_seconds,
    )
    chain = ",".join(
        [
            f"scale={w}:{h}:force_original_aspect_ratio=decrease:flags=lanczos",
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black",
            "setsar=1",
            # Hold the last frame first: a clip shorter than one output frame still has one.
            f"tpad=stop_mode=clone:stop_duration={seconds}",
            f"fps={fps}",
            f"trim=duration={seconds}",
            "setpts=PTS-STARTPTS",
            "format=yuv420p",
        ]
    )
    frames = max(1, round(seconds * fps))
    with tempfile.TemporaryDirectory(prefix="arena-normalise-") as tmp:
        src, dst = Path(tmp) / f"in.{fmt}", Path(tmp) / "out.mp4"
        src.write_bytes(data)
        if _probe(src, decode=False)["codec"] is None:
            raise InvalidMedia(f"{fmt} has no readable video stream")
        args = ["-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-map", "0:V:0"]
        args += ["-an", "-sn", "-dn", "-vf", chain, "-frames:v", str(frames)]
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(profile.video_crf)]
        args += ["-g", str(fps), "-pix_fmt", "yuv420p", "-profile:v", "high", "-threads", "1"]
        args += ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
        args += ["-map_metadata", "-1", "-map_chapters", "-1", "-metadata:s:v:0", "encoder="]
        args += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-movflags", "+faststart"]
        args += ["-f", "mp4", str(dst)]
        proc = _ffmpeg(args)
        if proc.returncode != 0 or not dst.exists():
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise InvalidMedia(f"ffmpeg could not re-encode this {fmt}: {' '.join(tail)}")
        return dst.read_bytes()


# == meshes ===================================================================================
_NUMPY = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _read_accessor(doc: dict[str, Any], blob: bytes, index: int) -> np.ndarray:
    """The (count, width) array of a non-sparse accessor of buffer 0, in its own type."""
    acc = doc["accessors"][index]
    if "sparse" in acc or "bufferView" not in acc:
        raise InvalidMedia("sparse or view-less accessors are not supported by the normaliser")
    view = doc["bufferViews"][acc["bufferView"]]
    if view.get("buffer", 0) != 0:
        raise InvalidMedia("accessors outside the GLB's own buffer are not supported")
    dtype = np.dtype(_NUMPY[acc["componentType"]])
    width = _WIDTH[acc["type"]]
    count = int(acc["count"])
    stride = int(view.get("byteStride", dtype.itemsize * width))
    start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
    rows = np.ndarray(
        shape=(count, width),
        dtype=dtype,
        buffer=blob,
        offset=start,
        strides=(stride, dtype.itemsize),
    )
    return np.array(rows)


def _mesh(data: bytes) -> bytes:
    """Give every triangle primitive without NORMAL flat normals (de-indexed, so each corner
    carries its face's normal, which is exactly how a viewer shades a mesh without normals)."""
    glb = _parse_glb(data)
    doc, blob = glb.doc, glb.bin
    if blob is None or len(doc.get("buffers", [])) != 1 or doc.get("extensionsUsed"):
        # Only the GLB's own buffer is rewritten; extensions (Draco, instancing...) hold
        # references this rewrite does not follow, so such files are served as they are.
        return data
    extra = bytearray()
    base = len(_pad4(blob, b"\x00"))
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            attrs = prim.get("attributes", {})
            if prim.get("mode", 4) != 4 or "POSITION" not in attrs or "NORMAL" in attrs:
                continue
            if "targets" in prim:
                continue  # morph targets would need the same treatment; left as they are
            corners = (
                _read_accessor(doc, blob, prim["indices"])[:, 0].astype(np.int64)
                if "indices" in prim
                else np.arange(doc["accessors"][attrs["POSITION"]]["count"])
            )
            corners = corners[: len(corners) // 3 * 3]
            new_attrs = {}
            for name, index in attrs.items():
                values = _read_accessor(doc, blob, index)[corners]
                new_attrs[name] = _add_accessor(doc, extra, base, values, doc["accessors"][index])
            pos = _read_accessor(doc, blob, attrs["POSITION"])[corners].astype(np.float64)
            tri = pos.reshape(-1, 3, 3)
            normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            length = np.linalg.norm(normal, axis=1, keepdims=True)
            normal = np.where(length > 0, normal / np.where(length > 0, length, 1), [0, 0, 1])
            normals = np.repeat(normal, 3, axis=0).astype("<f4")
            template = {"componentType": 5126, "type": "VEC3"}
            new_attrs["NORMAL"] = _add_accessor(doc, extra, base, normals, template)
            prim["attributes"] = new_attrs
            prim.pop("indices", None)
    if not extra:
        return data
    blob = _pad4(blob, b"\x00") + bytes(extra)
    doc["buffers"][0]["byteLength"] = len(blob)
    return _repack(doc, blob)


def _add_accessor(
    doc: dict[str, Any], extra: bytearray, base: int, values: np.ndarray, like: dict[str, Any]
) -> int:
    """Append ``values`` as a tightly packed view + accessor shaped like ``like``."""
    dtype = np.dtype(_NUMPY[like["componentType"]])
    raw = np.ascontiguousarray(values, dtype=dtype).tobytes()
    extra += b"\x00" * (-len(extra) % 4)
    views = doc.setdefault("bufferViews", [])
    views.append({"buffer": 0, "byteOffset": base + len(extra), "byteLength": len(raw)})
    extra += raw
    accessor: dict[str, Any] = {
        "bufferView": len(views) - 1,
        "componentType": like["componentType"],
        "count": len(values),
        "type": like["type"],
    }
    if like.get("normalized"):
        accessor["normalized"] = True
    if like["type"] == "VEC3" and like["componentType"] == 5126:  # POSITION needs bounds
        accessor["min"] = [float(v) for v in values.min(axis=0)]
        accessor["max"] = [float(v) for v in values.max(axis=0)]
    doc["accessors"].append(accessor)
    return len(doc["accessors"]) - 1


def _accessor_refs(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every (object, key) whose value is an accessor index."""
    refs: list[tuple[dict[str, Any], str]] = []
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            refs += [(prim["attributes"], k) for k in prim.get("attributes", {})]
            refs += [(prim, "indices")] if "indices" in prim else []
            refs += [(t, k) for t in prim.get("targets", []) for k in t]
    refs += [(s, "inverseBindMatrices") for s in doc.get("skins", []) if "inverseBindMatrices" in s]
    for anim in doc.get("animations", []):
        refs += [(sampler, k) for sampler in anim.get("samplers", []) for k in ("input", "output")]
    return refs


def _keep_referenced(items: list[Any], refs: list[tuple[dict[str, Any], str]]) -> list[Any]:
    """The items some reference points at, in their order, with the references renumbered."""
    used = sorted({holder[key] for holder, key in refs})
    renumber = {old: new for new, old in enumerate(used)}
    for holder, key in refs:
        holder[key] = renumber[holder[key]]
    return [items[i] for i in used]


def _repack(doc: dict[str, Any], blob: bytes) -> bytes:
    """Drop accessors and views nothing references any more, then the unreferenced bytes."""
    doc["accessors"] = _keep_referenced(doc["accessors"], _accessor_refs(doc))
    view_refs = [(a, "bufferView") for a in doc["accessors"] if "bufferView" in a]
    for acc in doc["accessors"]:  # a sparse accessor's indices and values have views too
        sparse = acc.get("sparse", {})
        view_refs += [
            (sparse[part], "bufferView") for part in ("indices", "values") if part in sparse
        ]
    view_refs += [(img, "bufferView") for img in doc.get("images", []) if "bufferView" in img]
    doc["bufferViews"] = _keep_referenced(doc["bufferViews"], view_refs)
    packed = bytearray()
    for view in doc["bufferViews"]:
        start = int(view.get("byteOffset", 0))
        chunk = blob[start : start + int(view["byteLength"])]
        packed += b"\x00" * (-len(packed) % 4)
        view["byteOffset"] = len(packed)
        packed += chunk
    doc["buffers"][0]["byteLength"] = len(packed)
    return _pack_glb(doc, bytes(packed))


# == Gaussian splats ==========================================================================
def _sh_rest_names(degree: int) -> list[str]:
    return [f"f_rest_{i}" for i in range(3 * ((degree + 1) ** 2 - 1))]


def _splat(data: bytes, profile: Profile) -> bytes:
    header = _parse_ply_header(data)
    vertex = next((e for e in header.elements if e[0] == "vertex"), None)
    if vertex is None or header.elements[0][0] != "vertex":
        raise InvalidMedia("ply has no leading vertex element")
    _, count, props = vertex
    source = np.frombuffer(
        data,
        dtype=np.dtype([(name, "<" + t) for name, t in props]),
        count=count,
        offset=header.length,
    )
    names = [name for name, _ in props]
    src_rest = sum(n.startswith("f_rest_") for n in names) // 3
    dst_rest = (profile.splat_sh_degree + 1) ** 2 - 1
    out_names = [*SPLAT_REQUIRED, *_sh_rest_names(profile.splat_sh_degree)]
    out = np.zeros(count, dtype=np.dtype([(n, "<f4") for n in out_names]))
    for name in SPLAT_REQUIRED:
        out[name] = source[name]
    for channel in range(3):  # 3DGS stores f_rest channel-major: R's bands, then G's, then B's
        for j in range(min(src_rest, dst_rest)):
            out[f"f_rest_{channel * dst_rest + j}"] = source[f"f_rest_{channel * src_rest + j}"]
    out = _splat_count(out, profile.splat_count)
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {len(out)}"]
    lines += [f"property float {n}" for n in out_names] + ["end_header", ""]
    return "\n".join(lines).encode("ascii") + out.tobytes()


def _splat_count(splats: np.ndarray, target: int) -> np.ndarray:
    """Exactly ``target`` splats: keep the most visible (opacity x footprint), or add fully
    transparent, tiny splats at the centre (a viewer draws nothing for them)."""
    if len(splats) > target:
        opacity = 1 / (1 + np.exp(-splats["opacity"].astype(np.float64)))
        footprint = np.exp(
            np.clip(splats["scale_0"] + splats["scale_1"] + splats["scale_2"], -60, 60)
        )
        keep = np.sort(np.argsort(-(opacity * footprint), kind="stable")[:target])
        return splats[keep]
    if len(splats) < target:
        filler = np.zeros(target - len(splats), dtype=splats.dtype)
        centre = [float(np.median(splats[a])) if len(splats) else 0.0 for a in ("x", "y", "z")]
        filler["x"], filler["y"], filler["z"] = centre
        filler["opacity"] = -30.0  # sigmoid(-30) ~ 1e-13
        filler["scale_0"] = filler["scale_1"] = filler["scale_2"] = -20.0
        filler["rot_0"] = 1.0
        return np.concatenate([splats, filler])
    return splats
