"""Browser tests for frontend/static/arena/battle.js + the vendored viewers.

Drives Debian's headless Chromium (/usr/bin/chromium, WebGL through SwiftShader)
with Playwright against a throw-away static site: frontend/static/ plus a
harness page that follows the DOM contract documented at the top of battle.js,
and sample media generated here (PNG, WebM, GLB, 3DGS-layout PLY). No Django.

Run:  .venv/bin/python -m pytest tests/frontend -p no:django -q
Set ARENA_SCREENSHOT_DIR=/some/dir to keep screenshots of the harness.
"""

from __future__ import annotations

import functools
import http.server
import io
import math
import os
import re
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest

from tests.browser import chromium, require_chromium

pytestmark = pytest.mark.browser

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")
np = pytest.importorskip("numpy")
PIL_Image = pytest.importorskip("PIL.Image")
trimesh = pytest.importorskip("trimesh")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "frontend" / "static"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

IMPORT_MAP = {
    "imports": {
        "three": "/static/vendor/three/three.module.min.js",
        "@google/model-viewer": "/static/vendor/model-viewer/model-viewer-module.min.js",
        "@mkkellogg/gaussian-splats-3d": "/static/vendor/gaussian-splats-3d/gaussian-splats-3d.module.js",
    }
}

# A budget, not a target: a splat parses and sorts on the CPU after its download, and under a
# loaded -n 4 run (SwiftShader, 2 cores) that took over 30 s here.
LOAD_TIMEOUT_MS = 150_000


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path) -> Path:
    """Overrides tests/conftest.py's autouse fixture (which needs Django's
    ``settings``) for this module only, so it also runs with ``-p no:django``."""
    media = tmp_path / "media"
    media.mkdir()
    return media


# ─── sample media ────────────────────────────────────────────────────────────


def make_png(path: Path, hue: int) -> None:
    size = 256
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    hsv = np.stack([np.full_like(x, hue / 360.0), 0.35 + 0.5 * x, 0.55 + 0.4 * y], axis=-1)
    rgb = PIL_Image.fromarray((hsv * 255).astype(np.uint8), "HSV").convert("RGB")
    # Non-square on purpose: tiles must letterbox (object-fit: contain).
    rgb.resize((256, 192)).save(path)


def make_webm(path: Path, source: str) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [
            ffmpeg,
            *["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"],
            source,
            *["-c:v", "libvpx", "-b:v", "300k", "-g", "12", "-an"],
            str(path),
        ],
        check=True,
        timeout=60,
    )


def torus_colors(u: Any) -> Any:
    """Hue around the ring (angle u about +Y), shared by the mesh and the splat torus."""
    return np.stack(
        [0.5 + 0.5 * np.cos(u), 0.5 + 0.5 * np.cos(u + 2.1), 0.5 + 0.5 * np.cos(u + 4.2)], axis=1
    )


def make_glb(path: Path, mesh: Any, rgba: tuple[int, int, int, int] | None = None) -> None:
    if rgba is None:  # colour vertices like the splat torus, so the two tiles look alike
        u = np.arctan2(mesh.vertices[:, 2], mesh.vertices[:, 0])
        rgb = (torus_colors(u) * 255).astype(np.uint8)
        mesh.visual.vertex_colors = np.column_stack([rgb, np.full(len(rgb), 255, np.uint8)])
    else:
        mesh.visual.face_colors = np.tile(np.array(rgba, dtype=np.uint8), (len(mesh.faces), 1))
    path.write_bytes(trimesh.Scene(mesh).export(file_type="glb"))


def make_torus_mesh() -> Any:
    """Same torus as make_splat_ply: ring of radius 0.7 in the XZ plane (Y up)."""
    torus = trimesh.creation.torus(major_radius=0.7, minor_radius=0.25)  # around +Z
    torus.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))
    return torus


PLY_FIELDS = [
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "f_dc_0",
    "f_dc_1",
    "f_dc_2",
    "opacity",
    "scale_0",
    "scale_1",
    "scale_2",
    "rot_0",
    "rot_1",
    "rot_2",
    "rot_3",
]


def make_splat_ply(path: Path, n: int = 4000, seed: int = 0) -> None:
    """A torus of Gaussians in the original 3DGS binary PLY layout (float32)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 2 * math.pi, n)
    v = rng.uniform(0, 2 * math.pi, n)
    big, small = 0.7, 0.25
    xyz = np.stack(
        [
            (big + small * np.cos(v)) * np.cos(u),
            small * np.sin(v),
            (big + small * np.cos(v)) * np.sin(u),
        ],
        axis=1,
    )
    xyz += rng.normal(0, 0.01, xyz.shape)
    rgb = torus_colors(u)
    sh_c0 = 0.28209479177387814
    data = np.zeros((n, len(PLY_FIELDS)), dtype=np.float32)
    data[:, 0:3] = xyz
    data[:, 6:9] = (rgb - 0.5) / sh_c0
    data[:, 9] = 4.0  # logit(opacity) ~ 0.98
    data[:, 10:13] = math.log(0.035)
    data[:, 13] = 1.0  # quaternion w, x, y, z
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {n}\n"
        + "".join(f"property float {f}\n" for f in PLY_FIELDS)
        + "end_header\n"
    )
    path.write_bytes(header.encode("ascii") + data.astype("<f4").tobytes())


# ─── harness pages ───────────────────────────────────────────────────────────

MEDIA_MARKUP = {
    "image": '<img src="{src}" alt="Output {slot}">',
    "video": '<video src="{src}" muted loop playsinline preload="auto"></video>',
    "mesh": '<model-viewer src="{src}" alt="Output {slot}" camera-controls interaction-prompt="none" disable-pan></model-viewer>',
    "splat": '<div class="splat-host"></div>',
}


def battle_html(
    battle_id: str, mode: str, slots: list[tuple[str, str]], *, vote: bool = True
) -> str:
    figures = []
    for i, (media, src) in enumerate(slots):
        slot = "ABCD"[i]
        inner = MEDIA_MARKUP[media].format(src=src, slot=slot)
        ranks = ""
        if mode == "rank_k":
            ranks = '<div class="rank-picker" role="radiogroup" aria-label="Rank {s}">{b}</div>'.format(
                s=slot,
                b="".join(
                    f'<label><input type="radio" name="rank_{slot}" value="{r}"><span>{r}</span></label>'
                    for r in range(1, len(slots) + 1)
                ),
            )
        figures.append(
            f'<figure class="slot" data-slot="{slot}" data-media="{media}" data-src="{src}">'
            f'<figcaption class="slot-label">{slot}</figcaption>{inner}{ranks}</figure>'
        )
    votes = ""
    if vote:
        buttons = "".join(
            f'<button type="button" class="btn">{"ABCD"[i]} is best</button>'
            for i in range(len(slots))
        )
        votes = f'<div class="vote-bar">{buttons}<button type="button" class="btn btn-primary">Submit</button></div>'
    return (
        f'<section class="battle" id="{battle_id}" data-battle-id="{battle_id}" data-mode="{mode}" data-k="{len(slots)}">'
        f'<div class="media-grid" data-count="{len(slots)}">{"".join(figures)}</div>'
        '<div class="video-controls" hidden><button type="button" class="vc-play">Play</button> '
        '<input type="range" class="vc-scrub" min="0" max="1000" value="0"> <span class="vc-time"></span></div>'
        f"{votes}</section>"
    )


def page_html(body: str) -> str:
    import json

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>arena harness</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/arena/arena.css">
<script src="/static/vendor/htmx/htmx.min.js"></script>
<script type="importmap">{json.dumps(IMPORT_MAP)}</script>
<script type="module" src="/static/arena/battle.js"></script>
</head><body>
<main>
<p class="notice">Harness: generated media, served from 127.0.0.1.</p>
{body}
</main></body></html>"""


MISSING = [("image", "png"), ("video", "webm"), ("mesh", "glb"), ("splat", "ply")]

THREE_D_SLOTS = [
    ("mesh", "/media/box.glb"),
    ("mesh", "/media/torus.glb"),
    ("splat", "/media/torus.ply"),
]


def build_site(root: Path) -> None:
    media = root / "media"
    media.mkdir()
    make_png(media / "a.png", 210)
    make_png(media / "b.png", 20)
    make_webm(media / "a.webm", "testsrc=size=160x160:rate=24:duration=3")
    make_webm(media / "b.webm", "testsrc2=size=160x160:rate=24:duration=3")
    make_glb(media / "box.glb", trimesh.creation.box(extents=(1.0, 0.6, 0.8)), (70, 120, 220, 255))
    make_glb(media / "torus.glb", make_torus_mesh())
    make_splat_ply(media / "torus.ply")
    (root / "static").symlink_to(STATIC, target_is_directory=True)

    video_battle = battle_html(
        "battle-video",
        "best_of_k",
        [
            ("video", "/media/a.webm"),
            ("video", "/media/b.webm"),
            ("image", "/media/a.png"),
            ("image", "/media/b.png"),
        ],
    )
    three_d = battle_html("battle-3d", "rank_k", THREE_D_SLOTS)
    swap_button = (
        '<p><button type="button" class="btn" id="swap" hx-get="/fragment-3d.html" '
        'hx-target="#battle-3d" hx-swap="outerHTML">Next 3D battle (htmx swap)</button></p>'
    )
    (root / "index.html").write_text(page_html(three_d + swap_button + video_battle))
    for fixture in FIXTURES.glob("*.glb"):
        (media / fixture.name).write_bytes(fixture.read_bytes())
    compressed = battle_html(
        "battle-compressed",
        "pairwise",
        [("mesh", "/media/sphere_draco.glb"), ("mesh", "/media/sphere_meshopt.glb")],
    )
    (root / "compressed.html").write_text(page_html(compressed))
    missing = battle_html(
        "battle-missing",
        "best_of_k",
        [(kind, f"/media/missing.{ext}") for kind, ext in MISSING],
    )
    (root / "missing.html").write_text(page_html(missing))
    (root / "fragment-3d.html").write_text(
        battle_html("battle-3d", "rank_k", THREE_D_SLOTS).replace(
            'data-battle-id="battle-3d"', 'data-battle-id="battle-3d-next"'
        )
    )


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".glb": "model/gltf-binary",
        ".ply": "application/octet-stream",
        ".webm": "video/webm",
        ".css": "text/css",
        ".html": "text/html",
    }

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def send_head(self) -> BinaryIO | None:
        """Adds single-range ``Range: bytes=a-b`` support (as whitenoise has in
        production): without it Chromium cannot seek the videos."""
        header = self.headers.get("Range", "")
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
        path = self.translate_path(self.path)
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(0, size - int(last or 0)), size - 1
        if start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("arena-site")
    build_site(root)
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class PageLog:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []

    def foreign_requests(self) -> list[str]:
        bad = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                bad.append(url)
        return bad


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def harness(browser, site: str) -> Iterator[tuple[object, PageLog]]:
    """The harness page, loaded once for the module (tests run in file order)."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 850}, device_scale_factor=1)
    page = ctx.new_page()
    log = PageLog()
    page.on("request", lambda req: log.requests.append(req.url))
    page.on(
        "console",
        lambda msg: (
            log.errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    page.on(
        "response",
        lambda res: (
            log.errors.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None
        ),
    )
    page.goto(f"{site}/index.html")
    try:
        yield page, log
    finally:
        ctx.close()


def wait_ready(page, battle_id: str) -> None:
    try:
        page.wait_for_function(
            """id => { const b = document.getElementById(id);
                       return b && (b.dataset.ready === 'true' || !!b.dataset.error); }""",
            arg=battle_id,
            timeout=LOAD_TIMEOUT_MS,
        )
    except sync_api.TimeoutError:
        state = page.evaluate(
            """id => [...document.querySelectorAll('#' + id + ' .slot')].map(
                   s => [s.dataset.slot, s.dataset.media, s.dataset.loaded || null, s.dataset.error || null])""",
            battle_id,
        )
        raise AssertionError(f"{battle_id} not ready: {state}") from None
    error = page.evaluate("id => document.getElementById(id).dataset.error || null", battle_id)
    assert error is None, f"{battle_id}: {error}"


def screenshot(page, name: str, tmp_path_factory) -> Path:
    out_dir = Path(os.environ.get("ARENA_SCREENSHOT_DIR") or tmp_path_factory.mktemp("shots"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    page.screenshot(path=str(path), full_page=True)
    return path


BATTLE_JS = "/static/arena/battle.js"


def orbits(page, battle_id: str) -> dict[str, dict[str, float]]:
    return page.evaluate(
        """async ([id, src]) => (await import(src)).getBattle(document.getElementById(id)).orbits()""",
        [battle_id, BATTLE_JS],
    )


def angle_diff(a: float, b: float) -> float:
    d = (a - b) % (2 * math.pi)
    return min(d, 2 * math.pi - d)


def assert_orbits_match(page, battle_id: str, leader: str, timeout_s: float = 8.0) -> dict:
    """Wait until every 3D slot's orbit equals the leader's (theta, phi, r)."""
    deadline = page.evaluate("performance.now()") + timeout_s * 1000
    last: dict = {}
    while page.evaluate("performance.now()") < deadline:
        last = orbits(page, battle_id)
        ref = last[leader]
        ok = all(
            angle_diff(o["theta"], ref["theta"]) < 0.03
            and abs(o["phi"] - ref["phi"]) < 0.03
            and abs(o["r"] - ref["r"]) / ref["r"] < 0.03
            and abs(o["fov"] - ref["fov"]) < 0.3
            for o in last.values()
        )
        if ok:
            return last
        page.wait_for_timeout(100)
    raise AssertionError(f"orbits did not follow slot {leader}: {last}")


def drag(page, selector: str, dx: float, dy: float) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    assert box, selector
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    steps = 6
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y + dy * i / steps)
    page.mouse.up()


# ─── tests ───────────────────────────────────────────────────────────────────


def test_vendored_files_present() -> None:
    for rel in [
        "vendor/htmx/htmx.min.js",
        "vendor/three/three.module.min.js",
        "vendor/three/three.core.min.js",
        "vendor/three/draco/draco_wasm_wrapper.js",
        "vendor/three/draco/draco_decoder.wasm",
        "vendor/three/basis/basis_transcoder.js",
        "vendor/three/basis/basis_transcoder.wasm",
        "vendor/model-viewer/model-viewer-module.min.js",
        "vendor/meshoptimizer/meshopt_decoder.js",
        "vendor/gaussian-splats-3d/gaussian-splats-3d.module.js",
        "vendor/chart.js/chart.umd.min.js",
        "vendor/chartjs-chart-error-bars/index.umd.min.js",
        "vendor/README.md",
        "arena/battle.js",
        "arena/arena.css",
    ]:
        assert (STATIC / rel).is_file(), rel
    # model-viewer's module build must import the shared "three", not bundle its own.
    mv = (STATIC / "vendor/model-viewer/model-viewer-module.min.js").read_text()
    assert 'from"three"' in mv.replace(" ", "") or "from'three'" in mv.replace(" ", "")


def test_all_slots_load(harness, tmp_path_factory) -> None:
    page, log = harness
    wait_ready(page, "battle-3d")
    wait_ready(page, "battle-video")
    slots = page.evaluate(
        """() => [...document.querySelectorAll('.slot')].map(s => ({
               slot: s.closest('.battle').id + ':' + s.dataset.slot, media: s.dataset.media,
               loaded: s.dataset.loaded || null, error: s.dataset.error || null}))"""
    )
    assert {s["media"] for s in slots} == {"image", "video", "mesh", "splat"}
    assert all(s["loaded"] == "true" and s["error"] is None for s in slots), slots
    # Video controls are un-hidden only where there are videos.
    assert page.is_visible("#battle-video .video-controls")
    assert not page.is_visible("#battle-3d .video-controls")
    # Square, equal tiles; grid of 2 columns for 4 slots, 3 for 3.
    boxes = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.battle')].map(b => [b.id,
               [...b.querySelectorAll('.slot > :is(img, video, model-viewer, .splat-host)')].map(el => {
                   const r = el.getBoundingClientRect(); return [Math.round(r.x), Math.round(r.y), r.width, r.height]; })]))"""
    )
    for battle_id, cols in (("battle-video", 2), ("battle-3d", 3)):
        b = boxes[battle_id]
        assert all(abs(w - h) < 1.5 and abs(w - b[0][2]) < 1.5 for _, _, w, h in b), b
        assert len({x for x, _, _, _ in b}) == cols, b
    # The splat viewer rendered into a canvas of the tile's size, with a live WebGL context.
    splat = page.evaluate(
        """() => { const c = document.querySelector('#battle-3d .splat-host canvas');
                   const gl = c && (c.getContext('webgl2') || c.getContext('webgl'));
                   return c && {w: c.clientWidth, h: c.clientHeight, lost: gl ? gl.isContextLost() : null}; }"""
    )
    assert splat and splat["w"] > 100 and splat["h"] > 100 and splat["lost"] is False, splat
    shot = screenshot(page, "harness.png", tmp_path_factory)
    assert shot.stat().st_size > 10_000
    assert log.foreign_requests() == []
    assert log.errors == []


def test_videos_play_and_scrub_in_sync(harness) -> None:
    page, log = harness
    wait_ready(page, "battle-video")
    videos = "#battle-video video"
    assert page.eval_on_selector_all(videos, "vs => vs.every(v => v.paused && v.muted && v.loop)")
    page.click("#battle-video .vc-play")
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{videos}')].every(v => !v.paused && v.currentTime > 0.3)""",
        timeout=10_000,
    )
    assert page.inner_text("#battle-video .vc-play").strip() == "Pause"
    times = page.eval_on_selector_all(videos, "vs => vs.map(v => v.currentTime)")
    assert max(times) - min(times) < 0.15, times

    # Scrub to 60 %: every video seeks there (paused first so the times stay put).
    page.click("#battle-video .vc-play")
    assert page.eval_on_selector_all(videos, "vs => vs.every(v => v.paused)")
    page.eval_on_selector(
        "#battle-video .vc-scrub",
        "el => { el.value = '600'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{videos}')].every(v => !v.seeking)""",
        timeout=5_000,
    )
    times = page.eval_on_selector_all(videos, "vs => vs.map(v => v.currentTime)")
    duration = page.eval_on_selector(videos, "v => v.duration")
    assert all(abs(t - 0.6 * duration) < 0.15 for t in times), (times, duration)

    # Drift correction: knock one video off by 1 s while playing; it is pulled back.
    page.keyboard.press("p")  # 'p' toggles play (focus is not in a text field)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{videos}')].every(v => !v.paused)"""
    )
    page.eval_on_selector_all(
        videos, "vs => { vs[1].currentTime = (vs[0].currentTime + 1) % vs[0].duration; }"
    )
    page.wait_for_timeout(600)
    times = page.eval_on_selector_all(videos, "vs => vs.map(v => v.currentTime)")
    assert abs(times[0] - times[1]) < 0.15 or abs(abs(times[0] - times[1]) - duration) < 0.15, times
    # Scrub bar follows playback (read in one frame: rAF updates it).
    value, now = page.evaluate(
        """() => new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(() => ok([
               Number(document.querySelector('#battle-video .vc-scrub').value),
               document.querySelector('#battle-video video').currentTime]))))"""
    )
    assert abs(value / 1000 * duration - now) < 0.1, (value, now)
    page.click("#battle-video .vc-play")
    assert page.eval_on_selector_all(videos, "vs => vs.every(v => v.paused)")
    assert log.errors == []


def test_linked_cameras(harness, tmp_path_factory) -> None:
    page, log = harness
    wait_ready(page, "battle-3d")
    start = assert_orbits_match(page, "battle-3d", "A")
    assert abs(start["A"]["phi"] - math.radians(75)) < 0.05, start

    # Drag model-viewer A: B (model-viewer) and C (splat) follow.
    drag(page, "#battle-3d .slot[data-slot=A] model-viewer", 120, 40)
    moved = assert_orbits_match(page, "battle-3d", "A")
    assert angle_diff(moved["A"]["theta"], start["A"]["theta"]) > 0.3, (start, moved)

    # Zoom model-viewer B with the wheel: radius propagates too.
    page.locator("#battle-3d .slot[data-slot=B] model-viewer").scroll_into_view_if_needed()
    box = page.locator("#battle-3d .slot[data-slot=B] model-viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -120)
    # model-viewer eases the zoom in over several frames: wait for B to get
    # closer before asking that the others followed it.
    for _ in range(80):
        if orbits(page, "battle-3d")["B"]["r"] < moved["B"]["r"] * 0.97:
            break
        page.wait_for_timeout(100)
    zoomed = assert_orbits_match(page, "battle-3d", "B")
    assert zoomed["B"]["r"] < moved["B"]["r"] * 0.97, (moved, zoomed)
    assert zoomed["B"]["r"] > 1.6, zoomed  # a notch of wheel is not a jump to the limit

    # Drag the splat canvas (C): both model-viewers follow.
    drag(page, "#battle-3d .slot[data-slot=C] .splat-host canvas", -150, -30)
    page.wait_for_timeout(300)
    dragged = assert_orbits_match(page, "battle-3d", "C")
    assert angle_diff(dragged["C"]["theta"], zoomed["C"]["theta"]) > 0.3, (zoomed, dragged)
    # OrbitControls damping keeps turning C after the mouse is released; the
    # others must follow until it settles.
    previous = None
    for _ in range(100):
        page.wait_for_timeout(150)
        current = orbits(page, "battle-3d")["C"]
        if previous and all(abs(current[k] - previous[k]) < 1e-3 for k in current):
            break
        previous = current
    assert_orbits_match(page, "battle-3d", "C", timeout_s=1.0)
    screenshot(page, "harness-rotated.png", tmp_path_factory)
    assert log.errors == []
    assert log.foreign_requests() == []


def test_the_splat_viewer_is_a_named_application_that_orbits_with_arrow_keys(harness) -> None:
    page, log = harness
    wait_ready(page, "battle-3d")
    # The harness's bare <div class="splat-host"> gets its role, name and focus from battle.js.
    host = page.locator("#battle-3d").get_by_role(
        "application", name="Output C, 3D splat; drag or use the arrow keys to orbit", exact=True
    )
    assert host.count() == 1
    assert host.get_attribute("aria-roledescription") == "3D viewer"
    assert host.get_attribute("tabindex") == "0"
    assert host.locator("canvas").get_attribute("aria-hidden") == "true"
    # model-viewer names its own (focusable) view after the alt text.
    names = page.eval_on_selector_all(
        "#battle-3d model-viewer",
        "els => els.map(e => e.shadowRoot.querySelector('.userInput').getAttribute('aria-label'))",
    )
    assert [name.split(".")[0] for name in names] == ["Output A", "Output B"], names

    before = assert_orbits_match(page, "battle-3d", "C")
    host.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    turned = assert_orbits_match(page, "battle-3d", "C")
    assert abs(angle_diff(turned["C"]["theta"], before["C"]["theta"]) - math.radians(20)) < 0.02
    page.keyboard.press("ArrowDown")
    tilted = assert_orbits_match(page, "battle-3d", "C")
    assert abs(tilted["C"]["phi"] - turned["C"]["phi"] - math.radians(10)) < 0.02, tilted
    assert log.errors == []


def test_htmx_swap_reinitialises_and_tears_down(harness) -> None:
    page, log = harness
    wait_ready(page, "battle-3d")
    page.evaluate(
        """() => { const c = document.querySelector('#battle-3d .splat-host canvas');
                   window.__oldGl = c.getContext('webgl2') || c.getContext('webgl');
                   window.__oldBattle = document.getElementById('battle-3d'); }"""
    )
    page.click("#swap")
    page.wait_for_function(
        "() => document.getElementById('battle-3d')?.dataset.battleId === 'battle-3d-next'",
        timeout=10_000,
    )
    wait_ready(page, "battle-3d")
    state = page.evaluate(
        """async (src) => { const m = await import(src);
             return { oldController: m.getBattle(window.__oldBattle),
                      oldContextLost: window.__oldGl.isContextLost(),
                      canvases: document.querySelectorAll('.splat-host canvas').length }; }""",
        BATTLE_JS,
    )
    assert state == {"oldController": None, "oldContextLost": True, "canvases": 1}, state
    assert_orbits_match(page, "battle-3d", "A")
    assert log.errors == []
    assert log.foreign_requests() == []


def test_compressed_meshes_use_vendored_decoders(browser, site: str) -> None:
    """Draco and meshopt glTFs decode with the copies under /static/vendor/."""
    ctx = browser.new_context(viewport={"width": 900, "height": 700})
    page = ctx.new_page()
    log = PageLog()
    page.on("request", lambda req: log.requests.append(req.url))
    page.on("console", lambda msg: log.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    try:
        page.goto(f"{site}/compressed.html")
        wait_ready(page, "battle-compressed")
        locations = page.evaluate(
            """() => { const MV = customElements.get('model-viewer');
                       return [MV.dracoDecoderLocation, MV.ktx2TranscoderLocation,
                               MV.meshoptDecoderLocation]; }"""
        )
        assert [urlsplit(u).path for u in locations] == [
            "/static/vendor/three/draco/",
            "/static/vendor/three/basis/",
            "/static/vendor/meshoptimizer/meshopt_decoder.js",
        ]
        paths = {urlsplit(u).path for u in log.requests}
        assert "/static/vendor/three/draco/draco_wasm_wrapper.js" in paths, sorted(paths)
        assert "/static/vendor/meshoptimizer/meshopt_decoder.js" in paths, sorted(paths)
        # KTX2 is not exercised by a model here: check the transcoder files are served.
        statuses = page.evaluate(
            """async base => Promise.all(['basis_transcoder.js', 'basis_transcoder.wasm']
                 .map(f => fetch(base + f).then(r => r.status)))""",
            locations[1],
        )
        assert statuses == [200, 200]
        assert log.foreign_requests() == []
        assert log.errors == []
    finally:
        ctx.close()


def test_missing_media_marks_slots_with_errors(browser, site: str, tmp_path_factory) -> None:
    ctx = browser.new_context(viewport={"width": 900, "height": 900})
    page = ctx.new_page()
    uncaught: list[str] = []
    page.on("pageerror", lambda exc: uncaught.append(str(exc)))
    try:
        page.goto(f"{site}/missing.html")
        page.wait_for_function(
            """() => [...document.querySelectorAll('#battle-missing .slot')]
                       .every(s => s.dataset.error || s.dataset.loaded)""",
            timeout=LOAD_TIMEOUT_MS,
        )
        state = page.evaluate(
            """() => { const b = document.getElementById('battle-missing');
                 return {ready: b.dataset.ready || null, error: b.dataset.error || null,
                         slots: [...b.querySelectorAll('.slot')].map(
                             s => [s.dataset.media, s.dataset.loaded || null, s.dataset.error || null])}; }"""
        )
        assert state["ready"] is None and state["error"], state
        for (media, loaded, error), (kind, ext) in zip(state["slots"], MISSING, strict=True):
            assert media == kind and loaded is None and error, state
            if kind != "video":  # the media element only says "Format error"
                assert f"missing.{ext}" in error, state
        assert uncaught == []
        screenshot(page, "missing.png", tmp_path_factory)
    finally:
        ctx.close()
