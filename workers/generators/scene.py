"""Procedural 2D landscape scenes derived from a prompt, shared by the image and video generators.

A prompt is turned into a :class:`SceneSpec` (palette, mood, hills, props) by hashing its words;
a few keywords ("night", "sunset", "sea", "desert", "forest", "snow", "city", colour names...)
steer the composition so different prompts look recognisably different. The seed only varies
details (sun position, hill phases, prop placement), so one prompt with several seeds reads as
variations of one idea, like a real model.

:class:`SceneRenderer` pre-renders the parallax layers once at a given resolution and then
composes frames cheaply, which is what keeps video generation fast.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._common import (
    COLOUR_WORDS,
    FloatArray,
    Look,
    apply_look,
    digest,
    f32,
    hsv,
    look_for,
    mix,
    prompt_words,
    resize,
    rng_for,
    smoothstep,
    unit,
    value_noise,
)

RGB = tuple[float, float, float]

_KEYWORDS: dict[str, frozenset[str]] = {
    "night": frozenset({"night", "moon", "moonlight", "midnight", "stars", "starry", "galaxy"}),
    "sunset": frozenset({"sunset", "sunrise", "dusk", "dawn", "evening", "twilight", "golden"}),
    "overcast": frozenset({"storm", "stormy", "rain", "rainy", "fog", "foggy", "cloudy", "mist"}),
    "water": frozenset(
        {"sea", "ocean", "lake", "beach", "river", "water", "harbor", "harbour", "coast", "bay"}
    ),
    "desert": frozenset({"desert", "dune", "dunes", "sand", "cactus", "canyon", "sahara"}),
    "snow": frozenset({"snow", "snowy", "winter", "ice", "icy", "frozen", "glacier", "arctic"}),
    "mountain": frozenset({"mountain", "mountains", "peak", "peaks", "alps", "cliff", "volcano"}),
    "forest": frozenset({"forest", "tree", "trees", "woods", "jungle", "garden", "park", "pine"}),
    "city": frozenset(
        {"city", "town", "village", "house", "houses", "castle", "street", "cottage", "building"}
    ),
}


@dataclass(frozen=True)
class Hill:
    """One ridge line. Heights are fractions of the image height measured from the top.

    ``waves`` are (amplitude, cycles per viewport width, phase) sine components; ``jagged``
    scales the fractal detail added on top (mountains are jagged, dunes smooth).
    """

    base: float
    waves: tuple[tuple[float, float, float], ...]
    colour: RGB
    shade: RGB
    snow: bool
    jagged: float


@dataclass(frozen=True)
class Prop:
    """An object standing on the nearest hill; ``x`` is in viewport widths (may exceed [0, 1]
    so panning video reveals more of them), ``size`` in image heights."""

    kind: str
    x: float
    size: float
    colour: RGB
    accent: RGB


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render a scene; pure data, derived only from (prompt, seed, style)."""

    sky_top: RGB
    sky_horizon: RGB
    sun_x: float
    sun_y: float
    sun_r: float
    sun_colour: RGB
    night: bool
    stars: int
    clouds: float
    cloud_colour: RGB
    hills: tuple[Hill, ...]
    water: bool
    water_level: float
    water_colour: RGB
    props: tuple[Prop, ...]
    look: Look
    key: bytes


def _flag(words: list[str], name: str) -> bool:
    return any(w in _KEYWORDS[name] for w in words)


@dataclass(frozen=True)
class _Themes:
    """Which keyword groups a prompt mentions (the mood possibly picked by its hash)."""

    night: bool
    sunset: bool
    overcast: bool
    water: bool
    desert: bool
    snow: bool
    mountain: bool
    forest: bool
    city: bool


@dataclass(frozen=True)
class _Ground:
    """HSV of the land: hue, saturation and value (already dimmed for the mood)."""

    hue: float
    sat: float
    val: float


def _themes(words: list[str], key: bytes) -> _Themes:
    """Keyword themes of the prompt; without an explicit mood the prompt hash picks one,
    mostly daytime."""
    night, sunset = _flag(words, "night"), _flag(words, "sunset")
    overcast = _flag(words, "overcast")
    if not (night or sunset or overcast):
        mood = unit(key, "mood")
        night, sunset = mood > 0.88, 0.7 < mood <= 0.88
    return _Themes(
        night=night,
        sunset=sunset,
        overcast=overcast,
        water=_flag(words, "water"),
        desert=_flag(words, "desert"),
        snow=_flag(words, "snow"),
        mountain=_flag(words, "mountain"),
        forest=_flag(words, "forest"),
        city=_flag(words, "city"),
    )


def _hue_jitter(words: list[str]) -> float:
    """Word hashes nudge the hues so unrelated prompts still get their own palette."""
    return float(sum(unit(w, "hue") - 0.5 for w in words) / max(1, len(words)) * 0.12)


def _shift_hue(c: RGB, look: Look) -> RGB:
    """Hue rotation of the style, applied once to each palette entry."""
    h, s, v = colorsys.rgb_to_hsv(*c)
    return hsv(h + look.hue_shift, s, v)


def _sky_palette(t: _Themes, hue_jitter: float) -> tuple[RGB, RGB, RGB]:
    """(sky top, sky horizon, sun colour) for the mood."""
    if t.night:
        sky_top, sky_horizon = hsv(0.66 + hue_jitter, 0.75, 0.14), hsv(0.62, 0.55, 0.36)
        sun_colour = (0.95, 0.95, 0.86)
    elif t.sunset:
        sky_top = hsv(0.72 + hue_jitter, 0.45, 0.45)
        sky_horizon = hsv(0.06 + hue_jitter * 0.5, 0.75, 1.0)
        sun_colour = (1.0, 0.82, 0.45)
    elif t.overcast:
        sky_top, sky_horizon = hsv(0.6, 0.12, 0.55), hsv(0.58, 0.08, 0.8)
        sun_colour = (0.95, 0.95, 0.92)
    else:
        sky_top = hsv(0.585 + hue_jitter, 0.62, 0.86)
        sky_horizon = hsv(0.55 + hue_jitter, 0.22, 0.98)
        sun_colour = (1.0, 0.96, 0.78)
    return sky_top, sky_horizon, sun_colour


def _cloud_colour(t: _Themes) -> RGB:
    """Grey-blue clouds at night, grey when overcast, white otherwise."""
    return (0.45, 0.47, 0.55) if t.night else ((0.8, 0.8, 0.84) if t.overcast else (1, 1, 1))


def _ground(t: _Themes, pr: np.random.Generator, hue_jitter: float) -> _Ground:
    """Land colour by terrain (sand, snow or grass with a prompt-random hue), dimmed at night
    and at sunset."""
    if t.desert:
        ground_hue, ground_sat, ground_val = 0.09, 0.55, 0.85
    elif t.snow:
        ground_hue, ground_sat, ground_val = 0.58, 0.08, 0.95
    else:
        ground_hue = 0.28 + float(pr.uniform(-0.06, 0.06)) + hue_jitter
        ground_sat, ground_val = 0.55, 0.62
    if t.night:
        ground_val *= 0.4
    elif t.sunset:
        ground_val *= 0.75
    return _Ground(ground_hue, ground_sat, ground_val)


def _hills(
    t: _Themes,
    ground: _Ground,
    accents: list[RGB],
    sky_horizon: RGB,
    look: Look,
    pr: np.random.Generator,
    sr: np.random.Generator,
) -> tuple[Hill, ...]:
    """Three ridges from far to near: shapes from the prompt (``pr``), wave phases from the
    seed (``sr``)."""
    n_hills = 3
    hills: list[Hill] = []
    for i in range(n_hills):
        depth = i / (n_hills - 1)  # 0 = far, 1 = near
        tall = 0.16 if t.mountain and i == 0 else 0.0
        base = 0.5 + 0.14 * depth + float(pr.uniform(-0.03, 0.03)) - tall * 0.5
        waves = tuple(
            (
                float(pr.uniform(0.02, 0.06) * (1.0 - 0.4 * depth) + tall * pr.uniform(0.3, 0.6)),
                float(pr.uniform(0.4, 1.6) * (k + 1)),
                float(sr.uniform(0, 2 * np.pi)),
            )
            for k in range(3)
        )
        body, shade = _hill_colours(i, depth, ground, accents, sky_horizon)
        hills.append(
            Hill(
                base=base,
                waves=waves,
                colour=_shift_hue(body, look),
                shade=_shift_hue(shade, look),
                snow=(t.snow or t.mountain) and i == 0,
                jagged=0.05 if t.mountain and i == 0 else (0.004 if t.desert else 0.015),
            )
        )
    return tuple(hills)


def _hill_colours(
    i: int, depth: float, ground: _Ground, accents: list[RGB], sky_horizon: RGB
) -> tuple[RGB, RGB]:
    """(body, shade) colours of ridge ``i`` at ``depth`` (0 = far, 1 = near), before the
    style's hue shift."""
    body = hsv(
        ground.hue + 0.02 * i,
        ground.sat * (0.7 + 0.3 * depth),
        ground.val * (0.75 + 0.25 * depth),
    )
    if accents and i == 1:
        body = mix(body, accents[-1], 0.35)
    # Atmospheric perspective: far ridges fade towards the horizon colour.
    body = mix(body, sky_horizon, 0.55 * (1.0 - depth))
    shade = mix(body, (0.05, 0.08, 0.12), 0.35)
    return body, shade


def _prop_kinds(t: _Themes) -> list[str]:
    """The props the scene's theme draws from (repeats weight the choice)."""
    if t.city:
        return ["house", "house", "tree"]
    if t.desert:
        return ["cactus", "rock"]
    if t.snow or t.mountain:
        return ["pine", "pine", "rock"]
    if t.forest:
        return ["tree", "pine", "tree"]
    return ["tree", "rock", "flower", "tree"]


def _props(
    t: _Themes,
    ground: _Ground,
    accent: RGB,
    look: Look,
    pr: np.random.Generator,
    sr: np.random.Generator,
) -> tuple[Prop, ...]:
    """Props standing on the nearest land: kinds, sizes and colours from the prompt (``pr``),
    positions from the seed (``sr``)."""
    kinds = _prop_kinds(t)
    n_props = int(pr.integers(3, 6)) + (4 if t.forest or t.city else 0)
    props = []
    for j in range(n_props):
        kind = kinds[int(pr.integers(0, len(kinds)))]
        size = float(pr.uniform(0.1, 0.2)) * (0.55 if kind in ("rock", "flower") else 1.0)
        colour = hsv(ground.hue + float(pr.uniform(-0.05, 0.05)), 0.6, 0.42 * (ground.val + 0.3))
        if kind in ("house", "flower"):
            colour = accent if j % 2 == 0 else hsv(float(pr.uniform()), 0.35, 0.85)
        props.append(
            Prop(
                kind=kind,
                x=float(sr.uniform(-0.1, 1.35)),
                size=size,
                colour=_shift_hue(colour, look),
                accent=_shift_hue(accent, look),
            )
        )
    return tuple(props)


def scene_spec(prompt: str, seed: int, style: int) -> SceneSpec:
    """Derive a :class:`SceneSpec`. The prompt fixes palette and composition, the seed the
    details and the style the overall look, so all three visibly matter."""
    words = prompt_words(prompt) or [prompt.strip().lower()]
    key = digest("scene", " ".join(words))
    pr = rng_for(key)  # prompt-only randomness: composition and palette
    sr = rng_for(key, "seed", seed)  # seed randomness: details
    look = look_for(style)
    # The helpers draw from pr/sr in a fixed order; keep it, or every scene changes.
    t = _themes(words, key)
    accents = [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]
    hue_jitter = _hue_jitter(words)
    sky_top, sky_horizon, sun_colour = _sky_palette(t, hue_jitter)
    ground = _ground(t, pr, hue_jitter)
    accent = accents[0] if accents else hsv(float(pr.uniform()), 0.7, 0.9)
    hills = _hills(t, ground, accents, sky_horizon, look, pr, sr)
    props = _props(t, ground, accent, look, pr, sr)

    water_colour = mix(sky_top, (0.02, 0.1, 0.2), 0.45)
    return SceneSpec(
        sky_top=_shift_hue(sky_top, look),
        sky_horizon=_shift_hue(sky_horizon, look),
        sun_x=float(sr.uniform(0.15, 0.85)),
        sun_y=float(sr.uniform(0.14, 0.32)) + (0.12 if t.sunset else 0.0),
        sun_r=float(pr.uniform(0.045, 0.075)),
        sun_colour=sun_colour,
        night=t.night,
        stars=int(sr.integers(60, 140)) if t.night else 0,
        clouds=0.75 if t.overcast else float(pr.uniform(0.12, 0.45)) * (0.6 if t.night else 1.0),
        cloud_colour=_cloud_colour(t),
        hills=hills,
        water=t.water,
        water_level=0.63 + float(pr.uniform(-0.03, 0.03)),
        water_colour=_shift_hue(water_colour, look),
        props=props,
        look=look,
        key=digest(key, seed, style),
    )


@dataclass(frozen=True)
class TierRender:
    """Rendering knobs per quality tier (4 = best).

    ``pixels`` caps the render resolution (longer side) before blurry upscaling to the
    output size, so a tier looks equally coarse in a 384 px image and a 256 px video;
    ``aa`` enables analytic
    anti-aliasing; ``octaves`` is texture detail; ``levels`` posterises colours (0 = off,
    banding otherwise); ``noise`` is the amplitude of blotchy low-res noise.
    """

    pixels: int
    aa: bool
    octaves: int
    levels: int
    noise: float

    def render_size(self, width: int, height: int) -> tuple[int, int]:
        """Render resolution for an output of ``width`` x ``height``."""
        f = min(1.0, self.pixels / max(width, height))
        return max(8, round(width * f)), max(8, round(height * f))


TIERS: dict[int, TierRender] = {
    4: TierRender(pixels=4096, aa=True, octaves=5, levels=0, noise=0.0),
    3: TierRender(pixels=270, aa=False, octaves=3, levels=0, noise=0.015),
    2: TierRender(pixels=138, aa=False, octaves=2, levels=20, noise=0.03),
    1: TierRender(pixels=64, aa=False, octaves=1, levels=8, noise=0.05),
}


def _rgb(c: RGB) -> FloatArray:
    return np.array(c, dtype=np.float32)


class SceneRenderer:
    """Pre-renders a scene's layers at ``(width, height)`` for one quality tier.

    ``margin`` extra viewport widths are rendered to the right so :meth:`frame` can pan the
    layers with parallax (video). Frames are float RGB in [0, 1] at the *output* resolution.
    """

    def __init__(
        self,
        spec: SceneSpec,
        width: int,
        height: int,
        tier: int,
        margin: float = 0.0,
    ) -> None:
        self.spec, self.out_w, self.out_h = spec, width, height
        self.tier = TIERS[tier]
        self.w, self.h = self.tier.render_size(width, height)
        self.cw = self.w + int(np.ceil(self.w * margin)) + 2
        self.rng = rng_for(spec.key, "render", tier)
        yy = np.arange(self.h, dtype=np.float32)[:, None] / self.h
        self.sky = self._sky(yy)
        # Layers from back to front, each (rgb, alpha, parallax speed); finalised below.
        self.layers: list[tuple[FloatArray, FloatArray, float]] = []
        self.layers.append((*self._clouds(), 0.35))
        last = len(spec.hills) - 1
        prop_hill = last - 1 if spec.water else last
        for i, hill in enumerate(spec.hills):
            if i == last and spec.water:
                continue  # the sea replaces the nearest ridge
            rgb, alpha, top = self._hill(hill, i)
            if i == prop_hill:
                # Props stand on the nearest land; across water they are further away.
                rgb, alpha = self._props(rgb, alpha, top, 0.6 if spec.water else 1.0)
            self.layers.append((rgb, alpha, 0.25 + 0.35 * i))
        if spec.water:
            self.water_noise = value_noise(self.rng, self.h, self.cw, 6, 1 + self.tier.octaves)
            # Waves are much wider than tall: stretch noise horizontally.
            self.water_noise = resize(
                self.water_noise[:, : max(8, self.cw // 4)],
                self.cw,
                self.h,
                Image.Resampling.BILINEAR,
            )
        # The style's look is an affine colour map, which commutes with alpha blending, so it
        # is applied once per layer instead of once per frame; layers are then premultiplied
        # so composing a frame is one multiply-add per layer.
        self.layers = [
            (apply_look(rgb, spec.look) * alpha[..., None], alpha, speed)
            for rgb, alpha, speed in self.layers
        ]
        self.water_rgb = apply_look(_rgb(spec.water_colour)[None], spec.look)[0]
        self.sun_rgb = apply_look(_rgb(spec.sun_colour)[None], spec.look)[0]
        self.sky_sun = apply_look(self._sun(self.sky, spec.sun_x, spec.sun_y), spec.look)

    # -- coverage -------------------------------------------------------------------------
    def _cover(self, d: FloatArray) -> FloatArray:
        """Coverage from a signed distance in pixels (<0 inside): a 1-pixel analytic ramp when
        anti-aliasing, a hard (jaggy) threshold otherwise."""
        if self.tier.aa:
            return f32(np.clip(0.5 - d, 0.0, 1.0))
        return (d < 0).astype(np.float32)

    # -- layers ---------------------------------------------------------------------------
    def _sky(self, yy: FloatArray) -> FloatArray:
        s = self.spec
        t = np.clip(yy / 0.65, 0.0, 1.0) ** 0.8
        sky = _rgb(s.sky_top) * (1 - t)[..., None] + _rgb(s.sky_horizon) * t[..., None]
        sky = np.broadcast_to(sky, (self.h, self.w, 3)).copy()
        if s.stars:
            xs = self.rng.uniform(0, self.w, s.stars)
            ys = self.rng.uniform(0, self.h * 0.55, s.stars)
            br = self.rng.uniform(0.4, 1.0, s.stars).astype(np.float32)
            sky[ys.astype(int), xs.astype(int)] = np.clip(
                sky[ys.astype(int), xs.astype(int)] + br[:, None], 0, 1
            )
        return sky.astype(np.float32)

    def _clouds(self) -> tuple[FloatArray, FloatArray]:
        s = self.spec
        n = value_noise(self.rng, self.h, self.cw, 3, self.tier.octaves + 1)
        yy = np.arange(self.h, dtype=np.float32)[:, None] / self.h
        band = smoothstep(0.6, 0.15, yy)  # clouds live in the upper sky
        alpha = smoothstep(0.55 - s.clouds * 0.9, 0.75 - s.clouds * 0.7, n * 0.5 + 0.5) * band
        shade = 1.0 - 0.25 * smoothstep(0.1, 0.8, n * 0.5 + 0.5)
        rgb = _rgb(s.cloud_colour) * shade[..., None]
        return rgb.astype(np.float32), (alpha * 0.9).astype(np.float32)

    def _ridge(self, hill: Hill) -> FloatArray:
        """Ridge height (in pixels from the top) for each canvas column."""
        x = np.arange(self.cw, dtype=np.float32) / self.w
        y = np.full(self.cw, hill.base, dtype=np.float32)
        for amp, freq, phase in hill.waves:
            y -= np.float32(amp) * np.sin(np.float32(2 * np.pi * freq) * x + np.float32(phase))
        detail = value_noise(self.rng, 1, self.cw, 12, self.tier.octaves + 1)[0]
        return f32((y + detail * np.float32(hill.jagged)) * self.h)

    def _hill(self, hill: Hill, index: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        top = self._ridge(hill)
        yy = np.arange(self.h, dtype=np.float32)[:, None]
        alpha = self._cover(top[None, :] - yy)
        depth = np.clip((yy - top[None, :]) / (0.35 * self.h), 0.0, 1.0)
        rgb = _rgb(hill.colour) * (1 - depth)[..., None] + _rgb(hill.shade) * depth[..., None]
        tex = value_noise(self.rng, self.h, self.cw, 10 + 6 * index, self.tier.octaves)
        rgb = rgb * (1.0 + 0.09 * tex)[..., None]
        if self.tier.octaves >= 5:
            # Fine vertical "grass" strokes: only the best tier has this texture.
            strokes = value_noise(self.rng, self.h // 4 + 2, self.cw, self.cw // 3, 1)
            strokes = resize(strokes, self.cw, self.h, Image.Resampling.BICUBIC)
            rgb = rgb * (1.0 + 0.07 * strokes * (index + 1) / 3)[..., None]
        if hill.snow:
            # Caps only on the higher peaks, a ragged band below the ridge line.
            cap = self._cover((top[None, :] + 0.05 * self.h + 0.02 * self.h * tex) - yy)
            peak = smoothstep(hill.base * self.h, (hill.base - 0.08) * self.h, top)[None, :]
            snow_w = cap * peak
            # Snow is a bright, slightly tinted version of the ridge (dimmer at night).
            snow = _rgb(hill.colour) * 0.3 + np.float32(0.4 + 0.55 * max(hill.colour))
            rgb = rgb * (1 - snow_w)[..., None] + snow * snow_w[..., None]
        return rgb.astype(np.float32), alpha, top

    def _props(
        self, rgb: FloatArray, alpha: FloatArray, top: FloatArray, scale: float
    ) -> tuple[FloatArray, FloatArray]:
        """Paint the spec's props (trees, houses, rocks...) standing on the ridge ``top``,
        their sizes multiplied by ``scale``."""
        rgb, alpha = rgb.copy(), alpha.copy()
        for p in sorted(self.spec.props, key=lambda q: q.size):
            cx = p.x * self.w
            if not -self.w * 0.3 < cx < self.cw + self.w * 0.3:
                continue
            col = int(np.clip(cx, 0, self.cw - 1))
            ground = float(top[col]) + p.size * scale * self.h * 0.12
            size = p.size * scale * self.h
            x0, x1 = int(max(0, cx - size)), int(min(self.cw, cx + size + 1))
            y0, y1 = int(max(0, ground - size * 1.3)), int(min(self.h, ground + 2))
            if x0 >= x1 or y0 >= y1:
                continue
            xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
            yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - ground
            for colour, d in self._shapes(p, xx, yy, size):
                a = self._cover(d)
                region = rgb[y0:y1, x0:x1]
                region[:] = region * (1 - a)[..., None] + _rgb(colour) * a[..., None]
                alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], a)
        return rgb, alpha

    @staticmethod
    def _shapes(p: Prop, xx: FloatArray, yy: FloatArray, s: float) -> list[tuple[RGB, FloatArray]]:
        """Signed-distance shapes (pixels, <0 inside) of one prop, painted in order.

        Coordinates are relative to the prop's foot point; y grows downwards.
        """

        def circle(cx: float, cy: float, r: float) -> FloatArray:
            return f32(np.hypot(xx - cx, yy - cy) - np.float32(r))

        def box(cx: float, cy: float, hw: float, hh: float) -> FloatArray:
            dx, dy = np.abs(xx - cx) - hw, np.abs(yy - cy) - hh
            outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
            return f32(outside + np.minimum(np.maximum(dx, dy), 0))

        def triangle(cx: float, base_y: float, hw: float, h: float) -> FloatArray:
            # Isosceles triangle pointing up; distance is approximate but fine for edges.
            rel = (base_y - yy) / h
            return f32(np.maximum(np.abs(xx - cx) - hw * (1 - rel), np.maximum(-rel, rel - 1) * h))

        trunk: RGB = (0.3, 0.2, 0.12)
        dark = (p.colour[0] * 0.7, p.colour[1] * 0.7, p.colour[2] * 0.7)
        if p.kind == "tree":
            return [
                (trunk, box(0, -0.25 * s, 0.06 * s, 0.27 * s)),
                (dark, circle(0.12 * s, -0.62 * s, 0.3 * s)),
                (p.colour, circle(-0.08 * s, -0.75 * s, 0.33 * s)),
            ]
        if p.kind == "pine":
            return [
                (trunk, box(0, -0.1 * s, 0.05 * s, 0.12 * s)),
                (dark, triangle(0, -0.15 * s, 0.32 * s, 0.7 * s)),
                (p.colour, triangle(0, -0.45 * s, 0.24 * s, 0.6 * s)),
            ]
        if p.kind == "house":
            return [
                (p.colour, box(0, -0.28 * s, 0.34 * s, 0.28 * s)),
                ((0.55, 0.18, 0.14), triangle(0, -0.55 * s, 0.45 * s, 0.38 * s)),
                ((1.0, 0.88, 0.5), box(0.12 * s, -0.32 * s, 0.08 * s, 0.08 * s)),
                ((0.3, 0.2, 0.15), box(-0.14 * s, -0.14 * s, 0.07 * s, 0.14 * s)),
            ]
        if p.kind == "cactus":
            green: RGB = (0.2, 0.5, 0.25)
            return [
                (green, box(0, -0.45 * s, 0.09 * s, 0.45 * s) - 0.05 * s),
                (green, box(0.2 * s, -0.55 * s, 0.05 * s, 0.15 * s) - 0.03 * s),
                (green, box(0.12 * s, -0.42 * s, 0.1 * s, 0.04 * s) - 0.02 * s),
            ]
        if p.kind == "flower":
            return [
                ((0.2, 0.5, 0.2), box(0, -0.3 * s, 0.03 * s, 0.3 * s)),
                (p.colour, circle(0, -0.65 * s, 0.2 * s)),
                ((1.0, 0.85, 0.2), circle(0, -0.65 * s, 0.08 * s)),
            ]
        rock: RGB = (0.45, 0.44, 0.42)
        return [
            (rock, np.hypot(xx / 1.6, yy + 0.05 * s) - np.float32(0.28 * s)),
            (
                (0.6, 0.59, 0.56),
                np.hypot((xx + 0.1 * s) / 1.6, yy + 0.15 * s) - np.float32(0.12 * s),
            ),
        ]

    # -- frames ---------------------------------------------------------------------------
    def _shift(self, layer: FloatArray, offset: float) -> FloatArray:
        """Crop a viewport out of a canvas layer at a horizontal pixel ``offset``.

        Anti-aliased tiers interpolate between neighbouring columns for smooth sub-pixel
        motion; the others snap to whole pixels, which makes motion step visibly.
        """
        offset = min(max(offset, 0.0), self.cw - self.w - 1.0)
        i = int(np.floor(offset))
        a = layer[:, i : i + self.w]
        f = np.float32(offset - i)
        if not self.tier.aa or f == 0:
            return a
        return a * (1 - f) + layer[:, i + 1 : i + 1 + self.w] * f

    def _sun(self, sky: FloatArray, sx: float, sy: float) -> FloatArray:
        s = self.spec
        xx = np.arange(self.w, dtype=np.float32)[None, :] + 0.5 - sx * self.w
        yy = np.arange(self.h, dtype=np.float32)[:, None] + 0.5 - sy * self.h
        r = s.sun_r * self.h
        d = np.hypot(xx, yy)
        glow = np.exp(-((d / (r * 3.5)) ** 2)).astype(np.float32) * np.float32(0.45)
        out = sky + glow[..., None] * (_rgb(s.sun_colour) - sky) * np.float32(0.9)
        disc = self._cover(d - r)
        if s.night:
            # Crescent moon: carve a disc offset towards the upper right.
            disc = disc * (1 - self._cover(np.hypot(xx - 0.4 * r, yy + 0.25 * r) - r * 0.85))
        return f32(out * (1 - disc)[..., None] + _rgb(s.sun_colour) * disc[..., None])

    def frame(
        self, t: float = 0.0, pan: float = 0.0, jitter: tuple[float, float] = (0, 0)
    ) -> FloatArray:
        """Compose one frame at time ``t`` (seconds) with camera ``pan`` in viewport widths.

        Returns float RGB (out_h, out_w, 3) in [0, 1] with the tier's degradations applied.
        ``jitter`` is a per-frame camera wobble in render pixels (bad tiers use it). The sun
        and sky are static: nothing in the sky visibly moves in a 2 s clip except clouds.
        """
        img = self.sky_sun.copy()
        for k, (prgb, alpha, speed) in enumerate(self.layers):
            drift = 0.018 * t * self.w if k == 0 else 0.0  # clouds also drift on their own
            off = pan * speed * self.w + drift + jitter[0]
            img *= (1 - self._shift(alpha, off))[..., None]
            img += self._shift(prgb, off)
        if self.spec.water:
            img = self._water(img, t, pan)
        return self._degrade(img)

    def _water(self, img: FloatArray, t: float, pan: float) -> FloatArray:
        s = self.spec
        level = int(s.water_level * self.h)
        rows = self.h - level
        if rows <= 0:
            return img
        # Reflection of the sky/hills above the waterline, darkened and tinted.
        refl = img[level - 1 :: -1][:rows] if level > 0 else img[:rows]
        refl = refl * 0.55 + self.water_rgb * 0.45
        off = (pan * 0.9 + 0.05 * t) * self.w
        waves = self._shift(self.water_noise, off)[level:]
        depth = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
        refl = refl * (1.0 + (0.18 + 0.1 * depth) * waves)[..., None]
        # Glitter column under the sun.
        xx = np.arange(self.w, dtype=np.float32)[None, :] / self.w
        glint = np.exp(-(((xx - s.sun_x) / 0.06) ** 2)) * np.clip(waves, 0, 1) * 0.6
        refl = refl + glint[..., None] * self.sun_rgb
        out = img.copy()
        out[level:] = refl
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _degrade(self, img: FloatArray) -> FloatArray:
        return degrade(img, self.tier, self.out_w, self.out_h, self.rng)


def degrade(
    img: FloatArray, tier: TierRender, out_w: int, out_h: int, rng: np.random.Generator
) -> FloatArray:
    """Apply tier artefacts to a render-resolution image: blotchy noise and colour banding,
    then blurry (bilinear) upscaling to ``(out_w, out_h)``."""
    h, w = img.shape[:2]
    if tier.noise:
        # Noise at a third of the render resolution, smoothed up: it reads as blotchy
        # "denoiser residue" rather than fine grain (fine grain would fake sharpness).
        # Mostly luminance noise: independent per-channel noise turns into colour confetti
        # once banded.
        n = rng.normal(0.0, tier.noise, size=(max(2, h // 3), max(2, w // 3), 3))
        n = n * 0.35 + n.mean(axis=-1, keepdims=True) * 1.1
        img = img + resize(n.astype(np.float32), w, h, Image.Resampling.BILINEAR)
    if tier.levels:
        img = np.round(np.clip(img, 0, 1) * (tier.levels - 1)) / np.float32(tier.levels - 1)
    if (w, h) != (out_w, out_h):
        img = resize(img, out_w, out_h, Image.Resampling.BILINEAR)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def conditioned_frame(
    cond: FloatArray, spec: SceneSpec, width: int, height: int, tier: int, t: float, zoom: float
) -> FloatArray:
    """Image-to-image / image-to-video: grade a conditioning image towards the prompt's palette
    (a duotone tint from sky and ground colours), Ken-Burns zoom by ``zoom``, and degrade it
    like a rendered scene of the same tier."""
    rend_tier = TIERS[tier]
    w, h = rend_tier.render_size(width, height)
    ch, cw = cond.shape[:2]
    crop_w, crop_h = cw / zoom, ch / zoom
    cx = cw / 2 + (unit(spec.key, "kx") - 0.5) * (cw - crop_w)
    cy = ch / 2 + (unit(spec.key, "ky") - 0.5) * (ch - crop_h)
    img = np.asarray(
        Image.fromarray(np.clip(cond * 255, 0, 255).astype(np.uint8)).resize(
            (w, h),
            Image.Resampling.BICUBIC,
            box=(cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2),
        ),
        dtype=np.float32,
    ) / np.float32(255)
    luma = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lo, hi = _rgb(spec.hills[-1].shade), _rgb(spec.sky_horizon)
    tint = lo * (1 - luma)[..., None] + hi * luma[..., None]
    img = apply_look(img * 0.7 + tint * 0.3, spec.look)
    return degrade(img, rend_tier, width, height, rng_for(spec.key, "cond", tier, round(t * 1000)))
