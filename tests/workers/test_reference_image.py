"""Tests for workers.generators.render_reference (the image-to-3D input photo). No Django."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.generators import generate, render_reference
from workers.generators.figure import figure_spec, foreground_box
from workers.generators.image import load_conditioning

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ("a red ceramic teapot", "a cute cat", "a bonsai tree", "a mushroom house", "a snowman")


@cache
def ref(prompt: str = "a red ceramic teapot", seed: int = 1, size: int = 384) -> bytes:
    return render_reference(prompt=prompt, seed=seed, size=size)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def object_mask(rgb: np.ndarray, tol: int = 12) -> np.ndarray:
    """Pixels that differ from the backdrop. The backdrop is a vertical gradient, so each row's
    backdrop colour is its border colour."""
    img = rgb.astype(np.int16)
    backdrop = (img[:, :1] + img[:, -1:]) // 2
    return np.abs(img - backdrop).max(axis=2) > tol


def test_it_is_byte_identical_for_identical_arguments() -> None:
    assert render_reference(prompt="a red ceramic teapot", seed=1) == ref()


def test_it_is_byte_identical_across_processes() -> None:
    code = (
        "import hashlib, sys; from workers.generators import render_reference; "
        "sys.stdout.write(hashlib.sha256(render_reference(prompt='a red ceramic teapot', "
        "seed=1)).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout == hashlib.sha256(ref()).hexdigest()


@pytest.mark.parametrize("size", [64, 384, 500])
def test_it_decodes_to_a_square_rgb_png_of_the_requested_size(size: int) -> None:
    data = ref(size=size)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        assert im.mode == "RGB"
        assert im.size == (size, size)


def test_it_writes_no_metadata_chunks() -> None:
    data = ref()
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert set(chunks) <= {b"IHDR", b"IDAT", b"IEND"}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_it_shows_one_object_in_the_middle_of_a_plain_backdrop(prompt: str) -> None:
    rgb = pixels(ref(prompt))
    mask = object_mask(rgb)
    assert 0.10 < mask.mean() < 0.70
    rows, cols = np.nonzero(mask)
    # Centred horizontally, with margins all round.
    assert abs((cols.min() + cols.max()) / 2 - rgb.shape[1] / 2) < 0.05 * rgb.shape[1]
    assert rows.min() > 0.05 * rgb.shape[0] and rows.max() < 0.95 * rgb.shape[0]
    assert cols.min() > 0.05 * rgb.shape[1] and cols.max() < 0.95 * rgb.shape[1]
    # The backdrop is light and neutral.
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(int)
    assert corners.min() > 180
    assert (corners.max(axis=1) - corners.min(axis=1)).max() < 12


def test_it_is_shaded_and_anti_aliased() -> None:
    rgb = pixels(ref("a snowman")).astype(int)
    mask = object_mask(rgb)
    lum = rgb[mask].mean(axis=1)
    # Lambert shading: a white object spans a wide range of brightness.
    assert np.percentile(lum, 95) - np.percentile(lum, 5) > 60
    # Anti-aliasing: the silhouette has in-between pixels, not just object or backdrop.
    edge = mask ^ np.roll(mask, 1, axis=1)
    assert len(np.unique(rgb[edge].sum(axis=1))) > 40


def test_it_uses_the_prompt_colours() -> None:
    rgb = pixels(ref("a red ceramic teapot")).astype(int)
    obj = rgb[object_mask(rgb)]
    redish = (obj[:, 0] > obj[:, 1] + 60) & (obj[:, 0] > obj[:, 2] + 60)
    assert redish.mean() > 0.02
    blue = pixels(ref("a blue sports car")).astype(int)
    obj = blue[object_mask(blue)]
    assert (obj[:, 2] > obj[:, 0] + 60).mean() > 0.2


def test_it_differs_by_prompt_and_seed() -> None:
    images = {ref(p) for p in PROMPTS}
    assert len(images) == len(PROMPTS)
    assert ref(seed=1) != ref(seed=2)
    a, b = pixels(ref("a cute cat")), pixels(ref("a bonsai tree"))
    assert (np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 30).mean() > 0.05


def test_it_draws_the_archetype_of_the_3d_generators() -> None:
    # Same figure_spec as the 3D tiers: a tree is tall with a narrow trunk at the bottom,
    # a snowman stacks balls of decreasing width.
    assert figure_spec("a bonsai tree", 1, 0).archetype == "tree"
    mask = object_mask(pixels(ref("a bonsai tree")))
    rows = np.nonzero(mask.any(axis=1))[0]
    widths = mask.sum(axis=1)
    top, bottom = rows.min(), rows.max()
    trunk = widths[bottom - (bottom - top) // 10]
    crown = widths[top + (bottom - top) // 3]
    assert trunk < crown / 3


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"seed": "1"}, "seed"),
        ({"seed": True}, "seed"),
        ({"size": 63}, "size"),
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": 100_000}, "size"),
        ({"size": 128.0}, "size"),
    ],
)
def test_it_rejects_bad_arguments_naming_them(kwargs: dict, argument: str) -> None:
    args: dict = {"prompt": "a cat", "seed": 1, "size": 128, **kwargs}
    with pytest.raises(ValueError, match=argument):
        render_reference(**args)


def test_it_is_found_and_cut_out_by_the_image_to_3d_projection() -> None:
    image = load_conditioning(ref("a cute cat"))
    top, bottom, left, right, mask = foreground_box(image)
    h, w = image.shape[:2]
    assert (top, left) > (0, 0) and bottom < h - 1 and right < w - 1
    assert 0.1 < mask.mean() < 0.7
    # A scene (no plain backdrop) and a flat colour keep the whole image.
    scene = generate(fmt="png", prompt="a red fox in a green forest", seed=1, quality=4)
    assert foreground_box(load_conditioning(scene.data))[:4] == (0, h - 1, 0, w - 1)
    flat = np.full((32, 32, 3), 0.5, dtype=np.float32)
    assert foreground_box(flat)[:4] == (0, 31, 0, 31)


def glb_colours(data: bytes) -> np.ndarray:
    """Vertex colours of a GLB as sRGB floats (COLOR_0 is linear uint16 RGBA)."""
    (json_len,) = struct.unpack("<I", data[12:16])
    doc = json.loads(data[20 : 20 + json_len])
    blob = data[20 + json_len + 8 :]
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"]]
    view = doc["bufferViews"][acc["bufferView"]]
    lin = np.frombuffer(blob, "<u2", acc["count"] * 4, view["byteOffset"]).reshape(-1, 4)
    return (lin[:, :3] / 65535.0) ** (1 / 2.4)


def ply_colours(data: bytes) -> np.ndarray:
    end = data.index(b"end_header\n") + len(b"end_header\n")
    props = [line.split()[-1] for line in data[:end].decode().splitlines() if "property" in line]
    rec = np.frombuffer(data[end:], dtype=[(p, "<f4") for p in props])
    return np.stack([0.5 + 0.28209479 * rec[f"f_dc_{k}"] for k in range(3)], axis=1)


@pytest.mark.parametrize("fmt", ["glb", "ply"])
def test_it_conditions_3d_assets_with_its_object_not_its_backdrop(fmt: str) -> None:
    # The image-to-3D projection cuts the object out of the photo: a blue tree's asset is
    # blue all over its crown, not washed out towards the light backdrop at the edges.
    prompt = "a blue sports car"
    assert figure_spec(prompt, 1, 0).archetype == "tree"
    out = generate(fmt=fmt, prompt=prompt, seed=5, quality=4, conditioning_image=ref(prompt))
    colours = glb_colours(out.data) if fmt == "glb" else ply_colours(out.data)
    blue = colours[:, 2] > colours[:, 0] + 0.2
    light_grey = (colours.min(axis=1) > 0.6) & (np.ptp(colours, axis=1) < 0.08)
    assert blue.mean() > 0.5
    assert light_grey.mean() < 0.05
