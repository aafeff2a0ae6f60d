"""Gaussian-splat generator: a procedural figure as a 3DGS ``.ply``.

The file layout is exactly what the reference 3D Gaussian Splatting code writes (through
plyfile), minus the higher-order SH coefficients (``f_rest_*``): binary little-endian, one
``vertex`` element with float32 properties

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3

where opacity is stored pre-sigmoid (logit), scales as natural logs, ``f_dc`` as degree-0
spherical-harmonic coefficients (colour = 0.5 + C0 * f_dc) and the rotation as a quaternion
(w, x, y, z), unnormalised as 3DGS allows. Normals are zero, as 3DGS writes them.
Coordinates are Y-up like the mesh generator (viewers for COLMAP-trained scenes often assume
Y-down; set the viewer's camera up vector accordingly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._common import FloatArray, f32, rng_for
from .figure import Surface, figure_spec, tessellate

SH_C0 = 0.28209479177387814
PLY_PROPERTIES = (
    "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
PLY_DTYPE = np.dtype([(name, "<f4") for name in PLY_PROPERTIES])

# Per tier: splat count, footprint relative to the sample spacing, thickness along the surface
# normal relative to the footprint (1 = round blobs, small = flat surfels), positional noise
# (in spacings), colour noise, mean opacity and the fraction of stray "floater" splats.
_COUNT = {1: 5000, 2: 8000, 3: 11000, 4: 15000}
_FOOTPRINT = {1: 1.5, 2: 1.15, 3: 0.9, 4: 0.75}
_FLATNESS = {1: 1.0, 2: 0.6, 3: 0.3, 4: 0.15}
_POS_NOISE = {1: 0.9, 2: 0.45, 3: 0.12, 4: 0.0}
_COLOUR_NOISE = {1: 0.1, 2: 0.05, 3: 0.02, 4: 0.0}
_OPACITY = {1: 0.55, 2: 0.7, 3: 0.85, 4: 0.95}
_FLOATERS = {1: 0.04, 2: 0.015, 3: 0.003, 4: 0.0}
_LEVELS = {0: 4, 1: 3, 2: 3, 3: 2}  # fine sampling surface for every tier


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


def _quat_z_to(normals: FloatArray) -> FloatArray:
    """Quaternions (w, x, y, z) rotating +Z onto each unit normal (the splat's thin axis is its
    local Z, scale_2). Uses the half-way formula; antiparallel normals get a 180-degree turn
    about X."""
    w = 1.0 + normals[:, 2]
    q = np.stack([w, -normals[:, 1], normals[:, 0], np.zeros_like(w)], axis=1)
    flip = w < 1e-6
    q[flip] = (0.0, 1.0, 0.0, 0.0)
    return f32(q / np.linalg.norm(q, axis=1, keepdims=True))


def ply_header(count: int) -> bytes:
    """The PLY header exactly as 3DGS/plyfile writes it (no comments)."""
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    lines += [f"property float {name}" for name in PLY_PROPERTIES]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def generate_splat(
    prompt: str, seed: int, quality: int, style: int, conditioning: FloatArray | None,
    image_key: bytes,
) -> bytes:  # fmt: skip
    """Sample splats on the figure's surface and return the PLY bytes."""
    fig = figure_spec(prompt, seed, style, image_key)
    surf = tessellate(fig, _LEVELS, 3, conditioning)
    rng = rng_for(fig.key, "splat", quality)
    count = _COUNT[quality]
    n_float = round(count * _FLOATERS[quality])
    # The helpers draw from rng in a fixed order; keep it, or every splat file changes.
    splats = _surface_splats(surf, rng, quality, count - n_float)
    if n_float:
        splats = _add_floaters(splats, rng, n_float)
    return ply_header(count) + _ply_body(splats, count).tobytes()


@dataclass
class _Splats:
    """Splat attributes before encoding: centres, RGB colours, scales (linear), rotations
    (w, x, y, z), opacities (linear) and the footprint of a surface splat."""

    pos: FloatArray
    col: FloatArray
    scales: FloatArray
    rots: FloatArray
    opacity: FloatArray
    foot: float


def _sample_surface(
    surf: Surface, rng: np.random.Generator, n_surf: int
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """``n_surf`` area-uniform surface samples: (positions, colours, unit face normals,
    mean sample spacing)."""
    tri = surf.positions[surf.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    # Area-weighted triangle choice, then uniform barycentric sampling inside it.
    chosen = rng.choice(len(tri), size=n_surf, p=area2 / area2.sum())
    r1, r2 = rng.random(n_surf), rng.random(n_surf)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1).astype(np.float32)
    pos = np.einsum("nk,nkd->nd", bary, tri[chosen])
    col = np.einsum("nk,nkd->nd", bary, surf.colours[surf.faces[chosen]])
    nrm = (cross[chosen] / np.maximum(area2[chosen], 1e-12)[:, None]).astype(np.float32)
    spacing = float(np.sqrt(area2.sum() / 2 / n_surf))
    return pos, col, nrm, spacing


def _surface_splats(surf: Surface, rng: np.random.Generator, quality: int, n_surf: int) -> _Splats:
    """Splats on the surface, with the tier's positional/colour noise, footprint, flatness
    and opacity; oriented so their thin axis follows the surface normal."""
    pos, col, nrm, spacing = _sample_surface(surf, rng, n_surf)
    pos = pos + rng.normal(0, _POS_NOISE[quality] * spacing, size=pos.shape)
    # Splats carry baked lighting (they are not relit by viewers): soft key light from above
    # and in front.
    light = np.array([0.3, 0.8, 0.5], dtype=np.float32)
    light /= np.linalg.norm(light)
    col = col * (0.62 + 0.38 * np.clip(nrm @ light, 0, 1))[:, None]
    col = col + rng.normal(0, _COLOUR_NOISE[quality] + 1e-9, size=col.shape)

    foot = spacing * _FOOTPRINT[quality]
    scales = np.empty((n_surf, 3), dtype=np.float32)
    scales[:, :2] = foot * rng.uniform(0.8, 1.2, size=(n_surf, 1))
    scales[:, 2] = scales[:, 0] * _FLATNESS[quality]
    rots = _quat_z_to(nrm)
    opacity = np.clip(_OPACITY[quality] + rng.normal(0, 0.05, n_surf), 0.05, 0.99)
    return _Splats(pos, col, scales, rots, opacity, foot)


def _add_floaters(s: _Splats, rng: np.random.Generator, n_float: int) -> _Splats:
    """Append floaters: stray translucent blobs around the object, a classic bad-3DGS
    artefact."""
    fpos = rng.normal(0, 0.35, size=(n_float, 3))
    return _Splats(
        pos=np.concatenate([s.pos, fpos]),
        col=np.concatenate([s.col, rng.uniform(0.2, 0.8, size=(n_float, 3))]),
        scales=np.concatenate([s.scales, np.full((n_float, 3), s.foot * 2.0, dtype=np.float32)]),
        rots=np.concatenate([s.rots, np.tile(f32([1, 0, 0, 0]), (n_float, 1))]),
        opacity=np.concatenate([s.opacity, rng.uniform(0.1, 0.35, n_float)]),
        foot=s.foot,
    )


def _ply_body(s: _Splats, count: int) -> NDArray[np.void]:
    """The 3DGS vertex records: SH DC colours, log scales and logit opacities."""
    out = np.zeros(count, dtype=PLY_DTYPE)
    for k, axis in enumerate("xyz"):
        out[axis] = s.pos[:, k]
    for k in range(3):
        out[f"f_dc_{k}"] = (np.clip(s.col[:, k], 0, 1) - 0.5) / SH_C0
        out[f"scale_{k}"] = np.log(s.scales[:, k])
    out["opacity"] = _logit(s.opacity.astype(np.float32))
    for k in range(4):
        out[f"rot_{k}"] = s.rots[:, k]
    return out
