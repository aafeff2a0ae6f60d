"""A tiny Gradio app for the gradio backend's tests (runs in its own venv, see conftest.py).

Usage: ``python app.py PORT VIDEO_PATH``. Every endpoint is deterministic and fast, except
``/slow`` (which sleeps longer than the tests' timeout) and ``/fail`` (which raises gr.Error).

Endpoints (api_name):

* ``/image(prompt, seed)`` -> PNG (``gr.Image``, a file path, so the bytes are ours).
* ``/echo(prompt, seed, image)`` -> 8x8 PNG whose pixel (0, 0) is the seed's low 24 bits as RGB,
  pixel (1, 0) the first three bytes of sha256(prompt), pixel (2, 0) the top-left pixel of the
  uploaded image (black without one): the tests read back what the backend sent.
* ``/video()`` -> the MP4 file given on the command line (``gr.Video``: a dict with "video").
* ``/mesh(prompt, seed)`` -> a minimal valid glTF-binary triangle (``gr.Model3D``).
* ``/wrong(prompt)`` -> a PNG through ``gr.File`` (the tests configure it as a glb model).
* ``/multi(prompt, seed)`` -> (text, PNG): two outputs, to pick with ``output``.
* ``/fail(prompt)`` -> raises ``gr.Error``.
* ``/quota(prompt)`` -> raises ``gr.Error`` with a ZeroGPU-style quota message.
* ``/slow(prompt)`` -> sleeps 30 s, then a PNG.

Kept free of the project's imports: only gradio (and Pillow, which gradio depends on).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
from PIL import Image

OUT = Path(tempfile.mkdtemp(prefix="arena-gradio-app-"))


def _png(name: str, pixels: list[tuple[int, int, int]], size: int = 8) -> str:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    for x, rgb in enumerate(pixels):
        img.putpixel((x, 0), rgb)
    path = OUT / f"{name}.png"
    img.save(path, format="PNG")
    return str(path)


def _rgb(data: bytes) -> tuple[int, int, int]:
    return (data[0], data[1], data[2])


def image(prompt: str, seed: float) -> str:
    digest = hashlib.sha256(f"{prompt}|{int(seed)}".encode()).digest()
    return _png(f"image-{digest.hex()[:16]}", [_rgb(digest)], size=32)


def echo(prompt: str, seed: float, picture: Image.Image | None) -> str:
    s = int(seed) & 0xFFFFFF
    seed_rgb = ((s >> 16) & 0xFF, (s >> 8) & 0xFF, s & 0xFF)
    prompt_rgb = _rgb(hashlib.sha256(prompt.encode()).digest())
    image_rgb = (0, 0, 0)
    if picture is not None:
        r, g, b = picture.convert("RGB").getpixel((0, 0))  # type: ignore[misc]
        image_rgb = (r, g, b)
    key = hashlib.sha256(repr((prompt, seed, image_rgb)).encode()).hexdigest()[:16]
    return _png(f"echo-{key}", [seed_rgb, prompt_rgb, image_rgb])


def video() -> str:
    return VIDEO


def _glb() -> bytes:
    positions = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": len(positions)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 1, 0],
            }
        ],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js
    body += struct.pack("<II", len(positions), 0x004E4942) + positions
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def mesh(prompt: str, seed: float) -> str:
    path = OUT / "mesh.glb"
    path.write_bytes(_glb())
    return str(path)


def wrong(prompt: str) -> str:
    return _png("wrong", [(1, 2, 3)])


def multi(prompt: str, seed: float) -> tuple[str, str]:
    return f"made {prompt}", image(prompt, seed)


def fail(prompt: str) -> str:
    raise gr.Error(f"the model refused: {prompt}")


def quota(prompt: str) -> str:
    raise gr.Error(
        "You have exceeded your GPU quota (60s requested vs. 12s left). Try again in 0:01:05"
    )


def slow(prompt: str) -> str:
    time.sleep(30)
    return _png("slow", [(0, 0, 0)])


def build() -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as demo:
        prompt = gr.Textbox(label="prompt")
        seed = gr.Number(label="seed", precision=0)
        picture = gr.Image(label="image", type="pil")
        png = gr.Image(label="png", type="filepath", format="png")
        text = gr.Textbox(label="text")
        clip = gr.Video(label="video")
        model = gr.Model3D(label="mesh")
        file = gr.File(label="file")
        button = gr.Button()
        button.click(image, [prompt, seed], png, api_name="image")
        button.click(echo, [prompt, seed, picture], png, api_name="echo")
        button.click(video, None, clip, api_name="video")
        button.click(mesh, [prompt, seed], model, api_name="mesh")
        button.click(wrong, [prompt], file, api_name="wrong")
        button.click(multi, [prompt, seed], [text, png], api_name="multi")
        button.click(fail, [prompt], png, api_name="fail")
        button.click(quota, [prompt], png, api_name="quota")
        button.click(slow, [prompt], png, api_name="slow")
    return demo


if __name__ == "__main__":
    PORT = int(sys.argv[1])
    VIDEO = sys.argv[2]
    build().launch(
        server_name="127.0.0.1",
        server_port=PORT,
        share=False,
        show_error=True,
        allowed_paths=[str(Path(VIDEO).parent), str(OUT)],
    )
