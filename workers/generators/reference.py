"""Reference "product photo" of a prompt's 3D figure: the input image of image-to-3D demos.

:func:`render_reference` shows the very figure the mesh and splat generators build for a
prompt (:func:`~.figure.figure_spec` with the neutral style 0, tessellated like the best mesh
tier) without its display base, standing on a studio floor, seen from the front (+Z,
orthographic, camera at floor height) -- the direction their colour projection assumes -- on
a light studio gradient with a soft floor shadow. Framing the object alone is what lets
:func:`~.figure.tessellate` cut it out of the photo and project it onto the asset's parts.

The renderer is a small numpy z-buffer rasteriser: front-facing triangles are cut into
per-row spans and the spans into pixels (all vectorised), and the nearest fragment per pixel
is kept with one ``np.minimum.at`` over packed (depth, triangle) keys. Winning pixels get
Phong-interpolated normals and colours, Lambert key/fill/sky light, a small highlight and
screen-space ambient occlusion. The figure is rasterised at twice the output size and
box-filtered down for anti-aliased edges.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ._common import FloatArray, f32, to_uint8
from .figure import Figure, Surface, figure_spec, tessellate, vertex_normals

MIN_SIZE = 64
MAX_SIZE = 1024
SUPERSAMPLE = 2

# Style 0 is the neutral look (no hue rotation, saturation or warmth change), so the photo
# shows the prompt's own colours ("a red teapot" is red). The 3D generators take their
# colours from this picture anyway, whatever their own style.
REFERENCE_STYLE = 0
# Best mesh tier's tessellation (mesh._LEVELS[4], mesh._DETAIL[4]): the finest, smoothest
# version of the shape the 3D tiers produce.
_LEVELS = {0: 4, 1: 3, 2: 2, 3: 2}
_DETAIL = 3
# The figure is normalised to a unit box; this fraction of the frame shows that box.
_FILL = 0.72
_CENTRE_Y = 0.47  # box centre, as a fraction of the frame height from the top

_BG_TOP = np.array([0.95, 0.95, 0.955], dtype=np.float32)
_BG_BOTTOM = np.array([0.80, 0.795, 0.79], dtype=np.float32)
_SHADOW_RGB = np.array([0.30, 0.29, 0.28], dtype=np.float32)

_KEY = f32([-0.45, 0.6, 0.66])
_KEY = _KEY / np.linalg.norm(_KEY)
_FILL_LIGHT = f32([0.7, 0.05, 0.45])
_FILL_LIGHT = _FILL_LIGHT / np.linalg.norm(_FILL_LIGHT)
_HALF = _KEY + f32([0.0, 0.0, 1.0])
_HALF = _HALF / np.linalg.norm(_HALF)

# Screen-space ambient occlusion: blur radius (fraction of the frame), gain, strongest darkening.
_AO_RADIUS = 0.025
_AO_STRENGTH = 4.0
_AO_MAX = 0.45

_TRI_BITS = 32
_EMPTY = np.iinfo(np.int64).max


def render_reference(*, prompt: str, seed: int, size: int = 384) -> bytes:
    """PNG bytes of a ``size`` x ``size`` studio photo of the figure for ``prompt``/``seed``.

    Deterministic (byte-identical for identical arguments, in any process, for a fixed
    numpy/Pillow), RGB, no metadata chunks.

    Raises:
        ValueError: naming the argument: empty/non-string prompt, non-int seed, non-int size
            or size outside ``MIN_SIZE..MAX_SIZE``.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"size must be an int, got {type(size).__name__}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")

    fig = figure_spec(prompt, seed, REFERENCE_STYLE)
    surf, floor = object_only(fig, tessellate(fig, _LEVELS, _DETAIL))
    rgb = render_surface(surf, size, floor=floor)
    buf = io.BytesIO()
    Image.fromarray(to_uint8(rgb), mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def object_only(fig: Figure, surf: Surface) -> tuple[Surface, float]:
    """The figure without its display base (the parts that are not ``projectable``), and the
    height of the floor it stands on (the base's top), re-normalised so that the part of the
    object above the floor fills a unit box centred on the origin.

    This is what the photo shows: the object itself, standing on the studio floor. It is also
    the region an image-to-3D generator projects the photo onto (see
    :func:`~.figure.tessellate`), so the photo's object maps onto the asset's object.
    """
    keep_part = np.array([p.projectable for p in fig.parts])
    pos = surf.positions
    if keep_part.all() or not keep_part.any():
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        return surf, float(lo[1])
    keep = keep_part[surf.part_of]
    floor = float(pos[~keep, 1].max())
    new_index = np.cumsum(keep) - 1
    faces = surf.faces[keep[surf.faces].all(axis=1)]
    pos = pos[keep]
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    lo[1] = min(max(float(lo[1]), floor), float(hi[1]) - 1e-3)
    centre, extent = (lo + hi) / 2, float((hi - lo).max())
    pos = (pos - centre) / extent
    floor = (floor - float(centre[1])) / extent
    return Surface(f32(pos), new_index[faces], surf.colours[keep], surf.part_of[keep]), floor


def _screen(positions: FloatArray, n: int) -> FloatArray:
    """Unit-box object space to pixel coordinates (x right, y down) of an n x n frame."""
    scale = _FILL * n
    x = n / 2 + positions[:, 0] * scale
    y = _CENTRE_Y * n - positions[:, 1] * scale
    return f32(np.stack([x, y], axis=1))


def _background(size: int, surf: Surface, floor: float) -> FloatArray:
    """Vertical studio gradient (rows only) plus a soft shadow on the floor under the object:
    a tight, darker one under its footprint and a broad, faint one under its whole width."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / np.float32(size)
    t = t * t * (3 - 2 * t)
    bg = _BG_TOP + (_BG_BOTTOM - _BG_TOP) * t[:, None]
    img = np.broadcast_to(bg[:, None, :], (size, size, 3)).copy()
    pos = surf.positions
    scale = _FILL * size
    bottom = max(float(pos[:, 1].min()), floor)
    foot = pos[(pos[:, 1] < bottom + 0.06) & (pos[:, 1] > floor - 0.02), 0]
    if not len(foot):
        foot = pos[:, 0]
    floor_y = _CENTRE_Y * size - bottom * scale
    alpha = np.zeros((size, size), dtype=np.float32)
    for x_lo, x_hi, spread, height, strength in (
        (float(foot.min()), float(foot.max()), 1.25, 0.035, 0.5),
        (float(pos[:, 0].min()), float(pos[:, 0].max()), 0.9, 0.07, 0.22),
    ):
        half_w = max((x_hi - x_lo) / 2 * spread, 0.08) * scale
        cx = size / 2 + (x_lo + x_hi) / 2 * scale
        ys = (np.arange(size, dtype=np.float32) + 0.5 - floor_y) / np.float32(height * scale)
        xs = (np.arange(size, dtype=np.float32) + 0.5 - cx) / np.float32(half_w)
        d2 = ys[:, None] ** 2 + xs[None, :] ** 2
        alpha = np.maximum(alpha, f32(strength * np.exp(-2.5 * d2)))
    return f32(img + (_SHADOW_RGB - img) * alpha[..., None])


def _fragments(
    scr: FloatArray, depth: FloatArray, faces: NDArray[np.int64], n: int
) -> NDArray[np.int64]:
    """Z-buffer of packed keys ``(quantised depth << 32) | face`` (``_EMPTY`` where no face).

    ``scr``/``depth`` are per-vertex screen xy and depth (smaller = nearer); ``faces`` are
    the front-facing triangles. Scanline rasterisation: each triangle is cut into one span per
    pixel row, spans into pixels, all vectorised. A pixel belongs to a triangle when its centre
    lies in the half-open span, and shared edges are evaluated with their end points in a
    canonical order, so neighbouring triangles neither overlap nor leave cracks.
    """
    zbuf = np.full(n * n, _EMPTY, dtype=np.int64)
    tri = scr.astype(np.float64)[faces]  # (F, 3, 2)
    ty = tri[:, :, 1]
    row0 = np.clip(np.ceil(ty.min(axis=1) - 0.5), 0, n).astype(np.int64)
    row1 = np.clip(np.ceil(ty.max(axis=1) - 0.5), 0, n).astype(np.int64)
    fid, row = _expand(row0, np.maximum(row1 - row0, 0))
    if not len(fid):
        return zbuf
    yc = row + 0.5
    xl = np.full(len(fid), np.inf)
    xr = np.full(len(fid), -np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        a, b = tri[fid, i], tri[fid, j]
        swap = (a[:, 1] > b[:, 1]) | ((a[:, 1] == b[:, 1]) & (a[:, 0] > b[:, 0]))
        lo = np.where(swap[:, None], b, a)
        hi = np.where(swap[:, None], a, b)
        valid = (yc >= lo[:, 1]) & (yc < hi[:, 1])
        dy = np.where(valid, hi[:, 1] - lo[:, 1], 1.0)
        x = lo[:, 0] + (yc - lo[:, 1]) * (hi[:, 0] - lo[:, 0]) / dy
        xl = np.where(valid, np.minimum(xl, x), xl)
        xr = np.where(valid, np.maximum(xr, x), xr)
    ok = xr > xl
    col0 = np.clip(np.ceil(np.where(ok, xl, 0) - 0.5), 0, n).astype(np.int64)
    col1 = np.clip(np.ceil(np.where(ok, xr, 0) - 0.5), 0, n).astype(np.int64)
    # Depth is linear in screen space (orthographic): each triangle's plane, evaluated at the
    # first pixel of each span, then stepped along the row.
    zt = depth.astype(np.float64)[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    dz1, dz2 = zt[:, 1] - zt[:, 0], zt[:, 2] - zt[:, 0]
    gx = (dz1 * e2[:, 1] - dz2 * e1[:, 1]) / det
    gy = (dz2 * e1[:, 0] - dz1 * e2[:, 0]) / det
    z_span = zt[fid, 0] + gx[fid] * (col0 + 0.5 - tri[fid, 0, 0]) + gy[fid] * (yc - tri[fid, 0, 1])
    span, col = _expand(col0, np.maximum(col1 - col0, 0))
    if not len(span):
        return zbuf
    face = fid[span]
    pix = row[span] * n + col
    z = z_span[span] + gx[face] * (col - col0[span])
    z = np.clip(z, zt.min(axis=1)[face], zt.max(axis=1)[face])
    q = np.clip(z * (1 << 20), 0, (1 << 30) - 1).astype(np.int64)
    np.minimum.at(zbuf, pix, (q << _TRI_BITS) | face)
    return zbuf


def _box_blur(img: FloatArray, radius: int) -> FloatArray:
    """Separable box blur of a 2-D float image with edge clamping (prefix sums)."""
    out = img
    for _ in range(2):
        size = out.shape[0]
        padded = np.pad(out, ((radius + 1, radius), (0, 0)), mode="edge")
        csum = np.cumsum(padded, axis=0, dtype=np.float64)
        out = f32((csum[2 * radius + 1 :] - csum[:size]) / (2 * radius + 1)).T
    return out


def _expand(
    start: NDArray[np.int64], count: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For runs ``start[i] .. start[i] + count[i] - 1``: (run index, value) of every element."""
    owner = np.repeat(np.arange(len(start), dtype=np.int64), count)
    first = np.cumsum(count) - count
    values = np.arange(len(owner), dtype=np.int64) - first[owner] + start[owner]
    return owner, values


def render_surface(
    surf: Surface, size: int, *, floor: float | None = None, supersample: int = SUPERSAMPLE
) -> FloatArray:
    """Render ``surf`` (unit box, +Y up, +Z to the viewer) front-on, orthographically, over
    the studio background: float RGB (size, size, 3). Nothing below the height ``floor``
    (default: the lowest point) is drawn: the camera looks along the floor.

    The figure is rasterised at ``supersample`` times the size; covered sub-pixels are then
    box-filtered into the output pixels (coverage-weighted over the background, which is
    smooth enough to be drawn at the output size directly).
    """
    n = size * supersample
    pos = surf.positions
    scr = _screen(pos, n)
    depth = f32(0.5 - pos[:, 2])  # distance from the viewer on +Z, in [0, 1]
    faces = _front_faces(pos, surf.faces)
    zbuf = _fragments(scr, depth, faces, n)
    if floor is None:
        floor = float(pos[:, 1].min())
    floor_row = int(np.ceil(_CENTRE_Y * n - floor * _FILL * n - 0.5))  # first row below it
    zbuf[max(0, floor_row) * n :] = _EMPTY
    pix = np.nonzero(zbuf != _EMPTY)[0]
    bg = _background(size, surf, floor).reshape(-1, 3)
    if not len(pix):
        return bg.reshape(size, size, 3)
    face = faces[zbuf[pix] & ((1 << _TRI_BITS) - 1)]
    row, col = np.divmod(pix, n)
    nrm, colour = _interpolate(surf, scr, face, row, col)
    shaded = _shade(nrm, colour)
    out_idx = (row // supersample) * size + col // supersample
    occlusion = _ambient_occlusion(zbuf, pix, out_idx, size, supersample)
    shaded = np.clip(shaded * (1 - occlusion)[:, None], 0, 1)
    return _box_filter(bg, out_idx, shaded, size, supersample)


def _front_faces(pos: FloatArray, faces: NDArray[np.int64]) -> NDArray[np.int64]:
    """The faces that are counter-clockwise (front-facing) seen from +Z."""
    tri = pos[faces]
    cross_z = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (
        tri[:, 1, 1] - tri[:, 0, 1]
    ) * (tri[:, 2, 0] - tri[:, 0, 0])
    return faces[cross_z > 0]


def _interpolate(
    surf: Surface,
    scr: FloatArray,
    face: NDArray[np.int64],
    row: NDArray[np.int64],
    col: NDArray[np.int64],
) -> tuple[FloatArray, FloatArray]:
    """(unit normal, colour) at the centres of the pixels ``row``/``col``, Phong-interpolated
    with barycentric coordinates in the triangles ``face`` that won them."""
    # Barycentric coordinates of the winning pixel centres in their triangle.
    a, b, c = scr[face[:, 0]], scr[face[:, 1]], scr[face[:, 2]]
    e1, e2 = b - a, c - a
    dx = (col + 0.5).astype(np.float32) - a[:, 0]
    dy = (row + 0.5).astype(np.float32) - a[:, 1]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(det == 0, np.float32(1), det)
    u = np.clip((dx * e2[:, 1] - dy * e2[:, 0]) / det, 0, 1)[:, None]
    v = np.clip((dy * e1[:, 0] - dx * e1[:, 1]) / det, 0, 1)[:, None]
    w = np.clip(1 - u - v, 0, 1)
    attrs = np.concatenate([vertex_normals(surf.positions, surf.faces), surf.colours], axis=1)
    mixed = w * attrs[face[:, 0]] + u * attrs[face[:, 1]] + v * attrs[face[:, 2]]
    nrm = mixed[:, :3] / np.maximum(np.linalg.norm(mixed[:, :3], axis=1, keepdims=True), 1e-6)
    return nrm, mixed[:, 3:]


def _shade(nrm: FloatArray, colour: FloatArray) -> FloatArray:
    """Lambert key/fill light, hemispherical sky ambient, silhouette darkening and a small
    Blinn highlight."""
    key = np.clip(nrm @ _KEY, 0, 1)
    fill = np.clip(nrm @ _FILL_LIGHT, 0, 1)
    sky = 0.3 + 0.1 * nrm[:, 1]  # hemispherical ambient: brighter from above
    facing = 0.8 + 0.2 * np.clip(nrm[:, 2], 0, 1)  # gentle darkening towards silhouettes
    light = (sky + 0.78 * key + 0.22 * fill) * facing
    spec = 0.22 * np.clip(nrm @ _HALF, 0, 1) ** 48
    shaded: FloatArray = colour * light[:, None] + spec[:, None]
    return shaded


def _ambient_occlusion(
    zbuf: NDArray[np.int64],
    pix: NDArray[np.int64],
    out_idx: NDArray[np.int64],
    size: int,
    supersample: int,
) -> FloatArray:
    """Screen-space ambient occlusion per covered sub-pixel ``pix``: darken where the
    neighbourhood is nearer to the viewer than the pixel itself (creases where parts meet,
    under a head or a cap). The blurred depth is computed at the output size, which is
    plenty for such a soft term."""
    n = size * supersample
    dmap = np.ones(n * n, dtype=np.float32)
    own = (zbuf[pix] >> _TRI_BITS).astype(np.float32) / np.float32(1 << 20)
    dmap[pix] = own
    coarse = dmap.reshape(size, supersample, size, supersample).min(axis=(1, 3))
    radius = max(1, round(_AO_RADIUS * size))
    near = _box_blur(_box_blur(coarse, radius), radius).reshape(-1)
    occlusion: FloatArray = np.clip((own - near[out_idx]) * _AO_STRENGTH, 0, _AO_MAX)
    return occlusion


def _box_filter(
    bg: FloatArray, out_idx: NDArray[np.int64], shaded: FloatArray, size: int, supersample: int
) -> FloatArray:
    """Sum sub-pixels into their output pixel over the background ``bg`` (size * size, 3),
    coverage-weighted (bincount sums in a fixed order)."""
    area = float(supersample * supersample)
    cover = np.bincount(out_idx, minlength=size * size) / area
    out = bg * (1 - cover)[:, None]
    for k in range(3):
        out[:, k] += np.bincount(out_idx, weights=shaded[:, k], minlength=size * size) / area
    return f32(out.reshape(size, size, 3))
