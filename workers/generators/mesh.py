"""Mesh generator: a procedural figure as binary glTF 2.0 (``.glb``) with vertex colours.

Written by hand (no trimesh exporter) so the JSON is minimal and neutral: ``asset.generator``
is ``"arena"``, no names, no extras. Quality tiers change tessellation (face count),
surface detail and shading: tier 1 ships no normals, so viewers shade it flat (faceted).
"""

from __future__ import annotations

import json
import struct

import numpy as np
from numpy.typing import NDArray

from ._common import FloatArray, rng_for
from .figure import IntArray, figure_spec, tessellate, vertex_normals

# Same neutral string media.strip_metadata writes, so built-in and remote assets look alike.
GENERATOR = "arena"

# Subdivision level per part rank (0 = main body ... 3 = tiny details) for each tier.
_LEVELS = {
    1: {0: 1, 1: 1, 2: 0, 3: 0},
    2: {0: 2, 1: 2, 2: 1, 3: 1},
    3: {0: 3, 1: 3, 2: 2, 3: 1},
    4: {0: 4, 1: 3, 2: 2, 3: 2},
}
_DETAIL = {1: 0, 2: 1, 3: 2, 4: 3}
_COLOUR_NOISE = {1: 0.08, 2: 0.04, 3: 0.015, 4: 0.0}
_ROUGHNESS = {1: 0.9, 2: 0.85, 3: 0.7, 4: 0.55}

_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def srgb_to_linear(c: FloatArray) -> FloatArray:
    """glTF vertex colours are linear; our palettes are sRGB."""
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def generate_mesh(
    prompt: str, seed: int, quality: int, style: int, conditioning: FloatArray | None,
    image_key: bytes,
) -> bytes:  # fmt: skip
    """Build the figure for these arguments and return GLB bytes."""
    fig = figure_spec(prompt, seed, style, image_key)
    surf = tessellate(fig, _LEVELS[quality], _DETAIL[quality], conditioning)
    colours = surf.colours
    if _COLOUR_NOISE[quality]:
        noise = rng_for(fig.key, "mesh-noise", quality).normal(
            0.0, _COLOUR_NOISE[quality], size=colours.shape
        )
        colours = np.clip(colours + noise.astype(np.float32), 0, 1)
    normals = None if quality == 1 else vertex_normals(surf.positions, surf.faces)
    return write_glb(surf.positions, normals, colours, surf.faces, _ROUGHNESS[quality])


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


# One accessor's data and description: (data, componentType, type, count, target).
_Array = tuple[NDArray[np.generic], int, str, int, int]


def write_glb(
    positions: FloatArray,
    normals: FloatArray | None,
    colours: FloatArray,
    faces: IntArray,
    roughness: float,
) -> bytes:
    """Serialise one indexed triangle primitive as GLB.

    ``colours`` are sRGB floats (V, 3), stored as linear normalised uint16 RGBA ``COLOR_0``
    (uint8 linear bands visibly in dark tones). Indices are uint16 when they fit.
    """
    arrays = _vertex_arrays(positions, normals, colours, faces)
    blob, views, accessors = _pack_arrays(arrays, positions)
    attributes = {"POSITION": 0}
    if normals is not None:
        attributes["NORMAL"] = 1
    attributes["COLOR_0"] = len(arrays) - 2
    doc = _gltf_document(attributes, len(arrays) - 1, roughness, accessors, views, len(blob))
    return pack_glb(doc, blob)


def _vertex_arrays(
    positions: FloatArray, normals: FloatArray | None, colours: FloatArray, faces: IntArray
) -> list[_Array]:
    """The primitive's arrays in buffer order: POSITION, NORMAL (if any), COLOR_0, indices."""
    n = len(positions)
    rgba = np.ones((n, 4), dtype=np.float32)
    rgba[:, :3] = srgb_to_linear(colours)
    small = n < 65535  # 65535 is reserved as primitive restart in some APIs
    arrays: list[_Array] = [
        (positions.astype("<f4"), _FLOAT, "VEC3", n, _ARRAY_BUFFER),
    ]
    if normals is not None:
        arrays.append((normals.astype("<f4"), _FLOAT, "VEC3", n, _ARRAY_BUFFER))
    arrays.append(
        (np.rint(rgba * 65535).astype("<u2"), _USHORT, "VEC4", n, _ARRAY_BUFFER),
    )
    arrays.append(
        (
            faces.astype("<u2" if small else "<u4"),
            _USHORT if small else _UINT,
            "SCALAR",
            faces.size,
            _ELEMENT_ARRAY_BUFFER,
        )
    )
    return arrays


def _pack_arrays(
    arrays: list[_Array], positions: FloatArray
) -> tuple[bytes, list[dict[str, int]], list[dict[str, object]]]:
    """Concatenate the arrays into one 4-byte aligned blob: (blob, bufferViews, accessors)."""
    blob = b""
    views, accessors = [], []
    for i, (data, ctype, atype, count, target) in enumerate(arrays):
        raw = data.tobytes()
        views.append(
            {"buffer": 0, "byteOffset": len(blob), "byteLength": len(raw), "target": target}
        )
        accessors.append(_accessor(i, ctype, atype, count, positions))
        blob += _pad(raw, b"\x00")
    return blob, views, accessors


def _accessor(
    i: int, ctype: int, atype: str, count: int, positions: FloatArray
) -> dict[str, object]:
    """Accessor ``i`` reading all of bufferView ``i``."""
    acc: dict[str, object] = {
        "bufferView": i,
        "componentType": ctype,
        "count": count,
        "type": atype,
    }
    if ctype == _USHORT and atype == "VEC4":
        acc["normalized"] = True
    if i == 0:
        # POSITION accessors must carry bounds (glTF 2.0 spec requirement).
        acc["min"] = [float(v) for v in positions.min(axis=0)]
        acc["max"] = [float(v) for v in positions.max(axis=0)]
    return acc


def _gltf_document(
    attributes: dict[str, int],
    indices: int,
    roughness: float,
    accessors: list[dict[str, object]],
    views: list[dict[str, int]],
    blob_length: int,
) -> dict[str, object]:
    """The glTF JSON of one node, one mesh with one primitive and one vertex-coloured
    material (the key order is part of the byte-exact output)."""
    return {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": attributes,
                        "indices": indices,
                        "material": 0,
                        "mode": 4,
                    }
                ]
            }
        ],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": roughness,
                }
            }
        ],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": blob_length}],
    }


def pack_glb(doc: dict[str, object], blob: bytes) -> bytes:
    """Assemble the GLB container: 12-byte header, JSON chunk (space padded), BIN chunk."""
    js = _pad(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    chunks = struct.pack("<II", len(js), 0x4E4F534A) + js
    if blob:
        blob = _pad(blob, b"\x00")
        chunks += struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks
