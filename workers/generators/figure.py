"""Procedural 3D figures (creature, tree, mushroom, snowman) built from deformed ellipsoids.

Both 3D generators share this: the mesh generator tessellates the parts at a tier-dependent
subdivision level, the splat generator samples Gaussian centres on a fine tessellation. The
coordinate frame is glTF's: +Y up, +Z towards the viewer, metres; every figure stands on a
round base disk and is normalised to a 1-unit bounding box centred on the origin.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._common import (
    COLOUR_WORDS,
    FloatArray,
    Look,
    apply_look,
    digest,
    f32,
    hsv,
    look_for,
    prompt_words,
    rng_for,
)

RGB = tuple[float, float, float]
IntArray = NDArray[np.int64]

_ARCHETYPE_WORDS: dict[str, frozenset[str]] = {
    "tree": frozenset({"tree", "trees", "forest", "plant", "bonsai", "oak", "pine", "palm"}),
    "mushroom": frozenset({"mushroom", "mushrooms", "fungus", "toadstool", "shroom"}),
    "snowman": frozenset({"snowman", "snow", "winter", "christmas", "frosty"}),
    "creature": frozenset(
        {
            "cat",
            "dog",
            "fox",
            "bear",
            "animal",
            "creature",
            "monster",
            "robot",
            "bunny",
            "rabbit",
            "owl",
            "bird",
            "penguin",
            "character",
            "mascot",
            "pet",
            "frog",
            "dragon",
        }
    ),
}
ARCHETYPES = ("creature", "tree", "mushroom", "snowman")


@dataclass(frozen=True)
class Part:
    """One deformed ellipsoid.

    ``roundness`` is the exponent of the radial norm: 2 = ellipsoid, large = cylinder-like
    (flat top and bottom, round in plan). ``bumps`` is the amplitude of smooth radial
    displacement; ``rank`` orders parts by visual importance (0 = main body) and decides how
    much tessellation budget a part gets.
    """

    centre: RGB
    radii: RGB
    colour: RGB
    roundness: float
    bumps: float
    rank: int
    spots: bool = False
    projectable: bool = True  # takes colours from a conditioning image


@dataclass(frozen=True)
class Figure:
    """A figure is its parts plus the key all per-figure randomness derives from."""

    archetype: str
    parts: tuple[Part, ...]
    key: bytes


@dataclass(frozen=True)
class _Kit:
    """What the archetype builders draw on: the palette (``main``, ``second``, the prompt's
    colour words), the style's colour map :meth:`c` and seeded jitter :meth:`j`."""

    main: RGB
    second: RGB
    accents: list[RGB]
    look: Look
    sr: np.random.Generator

    def c(self, rgb: RGB) -> RGB:
        """``rgb`` in the style's look (hue rotation, then saturation/contrast/warmth)."""
        h, s, v = colorsys.rgb_to_hsv(*rgb)
        r, g, b = hsv(h + self.look.hue_shift, s, v)
        out = apply_look(np.array([[r, g, b]], dtype=np.float32), self.look)[0]
        return (float(out[0]), float(out[1]), float(out[2]))

    def j(self, lo: float, hi: float) -> float:
        """A seeded proportion in [lo, hi) (draws from the seed's generator, in call order)."""
        return float(self.sr.uniform(lo, hi))


_DARK: RGB = (0.05, 0.05, 0.07)


def _creature_parts(k: _Kit) -> list[Part]:
    """Body, head, eyes, ears, feet and a pale belly."""
    c, j, main, second, dark = k.c, k.j, k.main, k.second, _DARK
    bw, bh, hr = j(0.28, 0.36), j(0.25, 0.33), j(0.19, 0.24)
    head_y = 0.1 + 2 * bh * 0.85 + hr * 0.8
    ear_kind = j(0, 1)
    return [
        Part((0, 0.1 + bh, 0), (bw, bh, bw * 0.9), c(main), 2.0, 0.03, 0),
        Part((0, head_y, 0.04), (hr, hr * 0.95, hr), c(main), 2.0, 0.015, 1),
        Part((-0.35 * hr, head_y + 0.1 * hr, 0.04 + 0.88 * hr), (0.16 * hr,) * 3, dark, 2.0, 0, 3),
        Part((0.35 * hr, head_y + 0.1 * hr, 0.04 + 0.88 * hr), (0.16 * hr,) * 3, dark, 2.0, 0, 3),
        Part((-0.55 * hr, head_y + 0.85 * hr, 0.0), (0.25 * hr, 0.45 * hr * (1 + ear_kind), 0.18 * hr), c(main), 2.0, 0, 2),
        Part((0.55 * hr, head_y + 0.85 * hr, 0.0), (0.25 * hr, 0.45 * hr * (1 + ear_kind), 0.18 * hr), c(main), 2.0, 0, 2),
        Part((-0.5 * bw, 0.12, 0.35 * bw), (0.3 * bw, 0.18 * bh, 0.4 * bw), c(second), 2.0, 0, 2),
        Part((0.5 * bw, 0.12, 0.35 * bw), (0.3 * bw, 0.18 * bh, 0.4 * bw), c(second), 2.0, 0, 2),
        Part((0, 0.1 + bh * 0.9, bw * 0.75), (bw * 0.55, bh * 0.6, bw * 0.3), c((0.95, 0.92, 0.85)), 2.0, 0.01, 2),
    ]  # fmt: skip


def _tree_parts(k: _Kit) -> list[Part]:
    """Trunk and four leafy blobs (leaf colour from the prompt's first colour word)."""
    c, j, accents = k.c, k.j, k.accents
    th, cr = j(0.3, 0.45), j(0.28, 0.36)
    leaf = c(accents[0] if accents else hsv(0.3 + j(-0.06, 0.06), 0.6, 0.55))
    return [
        Part(
            (0, 0.05 + th / 2, 0),
            (0.07, th / 2 + 0.05, 0.07),
            c((0.42, 0.27, 0.15)),
            2.4,
            0.02,
            1,
        ),
        Part((0, th + cr * 0.9, 0), (cr, cr * 0.95, cr), leaf, 2.0, 0.06, 0),
        Part((-cr * 0.7, th + cr * 0.45, 0.05), (cr * 0.65,) * 3, leaf, 2.0, 0.06, 1),
        Part((cr * 0.7, th + cr * 0.55, -0.05), (cr * 0.6,) * 3, leaf, 2.0, 0.06, 1),
        Part((0.05, th + cr * 1.55, 0.02), (cr * 0.55,) * 3, leaf, 2.0, 0.06, 2),
    ]


def _mushroom_parts(k: _Kit) -> list[Part]:
    """Stem, spotted cap and the gills under it."""
    c, j, main = k.c, k.j, k.main
    sh, cw = j(0.25, 0.4), j(0.36, 0.46)
    return [
        Part(
            (0, 0.05 + sh / 2, 0),
            (0.11, sh / 2 + 0.03, 0.11),
            c((0.93, 0.9, 0.8)),
            2.2,
            0.01,
            1,
        ),
        Part((0, 0.05 + sh, 0), (cw, cw * j(0.4, 0.55), cw), c(main), 2.0, 0.01, 0, spots=True),
        Part((0, 0.05 + sh - 0.01, 0), (cw * 0.9, 0.04, cw * 0.9), c((0.85, 0.8, 0.7)), 6.0, 0, 2),
    ]


def _snowman_parts(k: _Kit) -> list[Part]:
    """Three snowballs, carrot nose, eyes, hat and scarf."""
    c, j, main, second, dark = k.c, k.j, k.main, k.second, _DARK
    r1, r2, r3 = j(0.26, 0.3), j(0.19, 0.22), j(0.13, 0.16)
    y1, y2 = 0.05 + r1, 0.05 + 2 * r1 + r2 * 0.8
    y3 = y2 + r2 * 0.9 + r3 * 0.9
    snow = c((0.95, 0.96, 0.99))
    return [
        Part((0, y1, 0), (r1,) * 3, snow, 2.0, 0.02, 0),
        Part((0, y2, 0), (r2,) * 3, snow, 2.0, 0.015, 1),
        Part((0, y3, 0), (r3,) * 3, snow, 2.0, 0.01, 1),
        Part((0, y3, r3 * 1.2), (0.03, 0.03, r3 * 0.6), c((0.95, 0.5, 0.1)), 2.0, 0, 2),
        Part((-0.4 * r3, y3 + 0.25 * r3, 0.9 * r3), (0.15 * r3,) * 3, dark, 2.0, 0, 3),
        Part((0.4 * r3, y3 + 0.25 * r3, 0.9 * r3), (0.15 * r3,) * 3, dark, 2.0, 0, 3),
        Part((0, y3 + 0.8 * r3, 0), (r3 * 0.8, r3 * 0.6, r3 * 0.8), c(main), 8.0, 0, 2),
        Part((0, y2 + 0.75 * r2, 0), (r2 * 1.02, 0.05, r2 * 1.02), c(second), 6.0, 0, 2),
    ]


_BUILDERS: dict[str, Callable[[_Kit], list[Part]]] = {
    "creature": _creature_parts,
    "tree": _tree_parts,
    "mushroom": _mushroom_parts,
    "snowman": _snowman_parts,
}


def archetype_named(prompt: str) -> str | None:
    """The archetype a prompt names (the first of :data:`ARCHETYPES` one of its words belongs
    to), or ``None``: then :func:`figure_spec` picks one by the prompt's hash, which need not
    be what the prompt describes ("a potted cactus" comes out a snowman)."""
    return _named(prompt_words(prompt))


def _named(words: list[str]) -> str | None:
    return next(
        (name for name in ARCHETYPES if any(w in _ARCHETYPE_WORDS[name] for w in words)), None
    )


def _archetype(words: list[str], pr: np.random.Generator) -> str:
    """The first archetype the prompt names, else one picked by the prompt hash. The pick is
    drawn from ``pr`` either way, so the draws after it do not depend on the words."""
    fallback = ARCHETYPES[int(pr.integers(0, len(ARCHETYPES)))]
    return _named(words) or fallback


def _main_colours(accents: list[RGB], pr: np.random.Generator) -> tuple[RGB, RGB]:
    """(main, second) colours: the prompt's colour words, else a prompt-random main colour
    and its near-complement."""
    main = accents[0] if accents else hsv(float(pr.uniform()), float(pr.uniform(0.45, 0.75)), 0.85)
    second = accents[1] if len(accents) > 1 else hsv(colorsys.rgb_to_hsv(*main)[0] + 0.45, 0.5, 0.8)
    return main, second


def figure_spec(prompt: str, seed: int, style: int, image_key: bytes = b"") -> Figure:
    """Derive a :class:`Figure`: the prompt picks the archetype and palette, the seed the
    proportions, the style the colour look. ``image_key`` (digest of a conditioning image)
    also varies proportions so different inputs give different assets."""
    words = prompt_words(prompt) or [prompt.strip().lower()]
    pkey = digest("figure", " ".join(words))
    pr = rng_for(pkey)
    sr = rng_for(pkey, "seed", seed, image_key)
    archetype = _archetype(words, pr)
    look = look_for(style)
    accents = [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]
    main, second = _main_colours(accents, pr)
    kit = _Kit(main, second, accents, look, sr)
    base = Part((0, 0.03, 0), (0.48, 0.05, 0.48), kit.c(second), 10.0, 0.0, 1, projectable=False)
    parts = _BUILDERS[archetype](kit)
    return Figure(archetype, (base, *parts), digest(pkey, seed, style, image_key))


# -- tessellation -----------------------------------------------------------------------------
_T = (1 + 5**0.5) / 2
_ICO_V = np.array(
    [(-1, _T, 0), (1, _T, 0), (-1, -_T, 0), (1, -_T, 0), (0, -1, _T), (0, 1, _T),
     (0, -1, -_T), (0, 1, -_T), (_T, 0, -1), (_T, 0, 1), (-_T, 0, -1), (-_T, 0, 1)],
    dtype=np.float64,
)  # fmt: skip
_ICO_F = np.array(
    [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
     (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
     (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)],
    dtype=np.int64,
)  # fmt: skip
_SPHERES: dict[int, tuple[FloatArray, IntArray]] = {}


def icosphere(level: int) -> tuple[FloatArray, IntArray]:
    """Unit icosphere with ``20 * 4**level`` counter-clockwise (outward) faces; cached.

    Subdivision is vectorised: unique edges via ``np.unique`` give midpoint indices.
    """
    if level in _SPHERES:
        return _SPHERES[level]
    verts = _ICO_V / np.linalg.norm(_ICO_V, axis=1, keepdims=True)
    faces = _ICO_F
    for _ in range(level):
        n = len(faces)
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        uniq, inverse = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
        mids = verts[uniq[:, 0]] + verts[uniq[:, 1]]
        verts = np.concatenate([verts, mids / np.linalg.norm(mids, axis=1, keepdims=True)])
        idx = inverse.reshape(-1) + (len(verts) - len(uniq))
        a, b, cc = idx[:n], idx[n : 2 * n], idx[2 * n :]
        v0, v1, v2 = faces[:, 0], faces[:, 1], faces[:, 2]
        faces = np.concatenate(
            [np.stack(f, axis=1) for f in ((v0, a, cc), (a, v1, b), (cc, b, v2), (a, b, cc))]
        )
    result = (verts.astype(np.float32), faces)
    _SPHERES[level] = result
    return result


@dataclass
class Surface:
    """A triangle soup of the whole figure: positions (V, 3), faces (F, 3), vertex colours
    (V, 3) in [0, 1], per-vertex part index (V,) and the normalisation applied."""

    positions: FloatArray
    faces: IntArray
    colours: FloatArray
    part_of: IntArray


def _deform(unit_dirs: FloatArray, part: Part, rng: np.random.Generator, detail: int) -> FloatArray:
    """Map unit-sphere directions onto the part's deformed surface (object space).

    ``detail`` adds higher-frequency bumps, which only show when tessellation is fine enough.
    """
    d = unit_dirs.astype(np.float64)
    rho = np.hypot(d[:, 0], d[:, 2])
    q = part.roundness
    # Radial q-norm: q=2 -> sphere, large q -> cylinder with flat caps.
    r = (rho**q + np.abs(d[:, 1]) ** q) ** (-1.0 / q)
    if part.bumps:
        for k in range(3 + detail):
            freq = 2.5 + 1.7 * k
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            phase = rng.uniform(0, 2 * np.pi)
            amp = part.bumps / (1 + 0.6 * k)
            r = r * (1 + amp * np.sin(freq * (d @ axis) + phase))
    return f32(d * r[:, None] * np.array(part.radii) + np.array(part.centre))


def tessellate(
    fig: Figure, levels: dict[int, int], detail: int, conditioning: FloatArray | None = None
) -> Surface:
    """Tessellate every part at ``levels[part.rank]`` subdivisions (clamped to >= 0), merge,
    colour and normalise to a 1-unit box centred on the origin.

    Colours come from the part palette with gentle noise and a little ambient darkening at the
    bottom; with ``conditioning`` (float RGB image) projectable parts instead take the colour
    of the image projected from the front (+Z), like an image-to-3D model would.
    """
    rng = rng_for(fig.key, "tessellate")
    pos, faces, cols, owner = [], [], [], []
    offset = 0
    for i, part in enumerate(fig.parts):
        verts, f = icosphere(max(0, levels.get(part.rank, 1)))
        p = _deform(verts, part, rng_for(fig.key, "part", i), detail)
        colour = np.broadcast_to(np.array(part.colour, dtype=np.float32), p.shape).copy()
        # Low-frequency colour variation so surfaces are not flat plastic.
        wob = np.sin(verts @ rng.normal(size=(3, 2)).astype(np.float32) * 3.0).sum(axis=1)
        colour *= (1 + 0.06 * wob)[:, None]
        if part.spots:
            centres = rng.normal(size=(9, 3))
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
            near = (verts @ centres.T.astype(np.float32)).max(axis=1)
            spot = np.clip((near - 0.9) * 25, 0, 1) * (verts[:, 1] > 0.05)
            colour = colour * (1 - spot[:, None]) + 0.96 * spot[:, None]
        pos.append(p)
        faces.append(f + offset)
        cols.append(colour)
        owner.append(np.full(len(p), i, dtype=np.int64))
        offset += len(p)
    positions = np.concatenate(pos)
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    positions = (positions - (lo + hi) / 2) / float((hi - lo).max())
    colours = np.concatenate(cols)
    part_of = np.concatenate(owner)
    # Soft ambient occlusion towards the base disk.
    colours *= (0.8 + 0.2 * np.clip(positions[:, 1] + 0.5, 0, 1))[:, None]
    if conditioning is not None:
        colours = _project(conditioning, positions, colours, part_of, fig)
    return Surface(
        positions.astype(np.float32),
        np.concatenate(faces),
        np.clip(colours, 0, 1).astype(np.float32),
        part_of,
    )


def _project(
    image: FloatArray, positions: FloatArray, colours: FloatArray, part_of: IntArray, fig: Figure
) -> FloatArray:
    """Front-project ``image`` onto the projectable parts' bounding box (image-to-3D colours).

    Like real image-to-3D pipelines, the object is first cut out of a plain backdrop (see
    :func:`foreground_box`) and its box mapped onto the box of the projectable parts above the
    display base (the part of the figure that shows). Non-projectable parts (the base) get
    the object's darkened mean colour; eyes keep theirs."""
    proj = np.array([p.projectable for p in fig.parts])[part_of]
    out = colours.copy()
    if not proj.any():
        return out
    sel = positions[proj]
    lo, hi = sel.min(axis=0), sel.max(axis=0)
    if not proj.all():
        # Whatever is sunk into the base never shows: map the image onto the rest.
        lo[1] = min(max(lo[1], positions[~proj, 1].max()), hi[1] - 1e-3)
    top, bottom, left, right, mask = foreground_box(image)
    if not mask.all():
        # Parts of the asset that reach past the photo's silhouette (proportions vary with the
        # seed) take the nearest object colour rather than the backdrop's.
        image = _fill_outside(image, mask)
    u = np.clip((positions[:, 0] - lo[0]) / max(1e-6, hi[0] - lo[0]), 0, 1)
    v = np.clip((hi[1] - positions[:, 1]) / max(1e-6, hi[1] - lo[1]), 0, 1)
    col = np.rint(left + u * (right - left)).astype(int)
    row = np.rint(top + v * (bottom - top)).astype(int)
    sampled = image[row, col]
    dark_eye = colours.max(axis=1) < 0.1  # keep eyes dark so the figure stays readable
    use = proj & ~dark_eye
    out[use] = sampled[use]
    base = ~proj
    out[base] = image[mask].mean(axis=0) * 0.6
    return out


def _fill_outside(image: FloatArray, mask: NDArray[np.bool_]) -> FloatArray:
    """``image`` with the pixels outside ``mask`` replaced by a smooth extension of the masked
    colours (push-pull: masked means over a 2x2 pyramid, holes filled from coarser levels)."""
    levels: list[tuple[FloatArray, FloatArray]] = []
    colour: FloatArray = np.where(mask[..., None], image, 0).astype(np.float64)
    weight: FloatArray = mask.astype(np.float64)
    while True:
        levels.append((colour, weight))
        h, w = weight.shape
        if h == 1 and w == 1:
            break
        ph, pw = h + h % 2, w + w % 2
        colour = np.pad(colour, ((0, ph - h), (0, pw - w), (0, 0)))
        weight = np.pad(weight, ((0, ph - h), (0, pw - w)))
        colour = colour.reshape(ph // 2, 2, pw // 2, 2, 3).sum(axis=(1, 3))
        weight = weight.reshape(ph // 2, 2, pw // 2, 2).sum(axis=(1, 3))
    filled: FloatArray = levels[-1][0] / np.maximum(levels[-1][1], 1e-12)[..., None]
    for total, count in reversed(levels[:-1]):
        h, w = count.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:h, :w]
        own = total / np.maximum(count, 1e-12)[..., None]
        filled = np.where((count > 0)[..., None], own, coarse)
    return f32(np.where(mask[..., None], image, filled))


def foreground_box(image: FloatArray) -> tuple[int, int, int, int, NDArray[np.bool_]]:
    """Find an object photographed on a plain (or vertically graded) backdrop.

    The backdrop of each row is the mean of that row's left and right border pixels. If the
    border is consistent with such a backdrop, pixels clearly different from it are the
    object: returns its (top, bottom, left, right) pixel box (inclusive) and mask. Otherwise
    (a scene, a flat colour, a tiny speck) the whole image and an all-true mask.
    """
    h, w = image.shape[:2]
    whole = (0, h - 1, 0, w - 1, np.ones((h, w), dtype=bool))
    if h < 8 or w < 8:
        return whole
    left, right = image[:, :2].mean(axis=1), image[:, -2:].mean(axis=1)
    backdrop = (left + right) / 2
    tol = 0.1
    edges_agree = np.abs(left - right).max(axis=1) < tol
    diff = np.abs(image - backdrop[:, None, :]).max(axis=2)
    rim_clear = (diff[:2] < tol).mean() > 0.97 and (diff[-2:] < tol).mean() > 0.9
    if edges_agree.mean() < 0.95 or not rim_clear:
        return whole
    mask = diff > tol
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if mask.mean() < 0.01 or len(rows) < 0.1 * h or len(cols) < 0.05 * w:
        return whole
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]), mask


def vertex_normals(positions: FloatArray, faces: IntArray) -> FloatArray:
    """Area-weighted smooth vertex normals (unit length)."""
    tri = positions[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(positions, dtype=np.float64)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    norm = np.linalg.norm(vn, axis=1, keepdims=True)
    return f32(vn / np.maximum(norm, 1e-12))
