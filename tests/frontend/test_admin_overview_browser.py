"""The admin overview in headless Chromium: staff log in and land on every arena's figures, with
the vote charts drawn by the vendored Chart.js, no console errors and nothing from another host;
a screenshot of the page is checked for the drawn bars.

Set ARENA_SCREENSHOTS=<folder> to keep the screenshot.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser import chromium, require_chromium, watch_page

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from django.utils import timezone  # noqa: E402
from PIL import Image  # noqa: E402

from arena.activity import activity_rollup  # noqa: E402
from arena.leaderboards import leaderboard_rebuild, vote_exclude  # noqa: E402
from arena.models import Arena, Asset  # noqa: E402
from tests.arena.test_dashboard import abandon, fail, flag, traffic  # noqa: E402
from tests.factories import ready_arena  # noqa: E402

pytestmark = pytest.mark.browser

# Django admin's --secondary, the colour dashboard.js gives counted votes.
COUNTED_RGB = (0x41, 0x76, 0x90)
PASSWORD = "a long passphrase 9"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def _arena_with_history(name: str, *, votes: int, seed: int, position: int) -> Arena:
    """Votes spread over two weeks (busier lately), some excluded, an abandoned battle, a
    flagged voter, a failed generation and a leaderboard built before the last votes."""
    now, rng = timezone.now(), random.Random(seed)
    arena = ready_arena(models=4, prompts=3, name=name, position=position)
    moments = sorted(now - timedelta(hours=rng.triangular(0, 14 * 24, 0)) for _ in range(votes))
    cast = traffic(arena, at=moments, seed=seed, voters=5)
    for vote in cast[-3:-1]:
        vote_exclude(vote=vote, reason="a reviewer's decision")
    leaderboard_rebuild(arena=arena)
    traffic(arena, at=[now], seed=seed + 1)
    abandon(arena, at=now)
    flag(arena)
    fail(Asset.objects.filter(model__arenas=arena).order_by("pk")[0], at=now)
    return arena


def _screenshot(page: Any, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ARENA_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "admin-overview.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _share_of_colour(image: Image.Image, box: dict[str, float], rgb: tuple[int, ...]) -> float:
    """Share of the pixels inside ``box`` (CSS pixels, scale 1) within 12 of ``rgb``."""
    crop = image.convert("RGB").crop(
        (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    )
    pixels = np.asarray(crop, dtype=np.int16)
    near = (np.abs(pixels - np.array(rgb, dtype=np.int16)) <= 12).all(axis=-1)
    return float(near.mean())


def test_staff_land_on_the_overview_with_its_charts_drawn(
    browser: Any,
    live_server: Any,
    transactional_db: None,
    django_user_model: Any,
    tmp_path: Path,
) -> None:
    arenas = [
        _arena_with_history("Text to image", votes=70, seed=1, position=1),
        _arena_with_history("Text to video", votes=35, seed=2, position=2),
    ]
    activity_rollup()
    django_user_model.objects.create_superuser("operator", "o@example.org", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_page(page)

    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url("**/admin/login/**")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.wait_for_function(
        "() => document.querySelectorAll('canvas[data-activity][data-drawn=true]').length === 4"
    )

    for arena in arenas:
        section = page.locator(f"#overview-{arena.slug}")
        assert section.is_visible()
        assert section.locator("[data-figure]").count() == 9
        assert section.locator("[data-figure=votes] .ov-value").inner_text() != "0"
        assert section.locator("[data-figure=reviews] .ov-value").inner_text() == "1"
        assert section.locator("[data-figure=failures] .ov-value").inner_text() == "1"
        assert "stale" in section.locator("[data-figure=snapshot]").inner_text()
    bars = page.eval_on_selector_all(
        "canvas[data-activity]",
        """canvases => canvases.map(c => {
            const chart = Chart.getChart(c);
            const total = chart.data.datasets.flatMap(d => d.data).reduce((a, b) => a + b, 0);
            return {total, points: chart.data.labels.length, height: c.clientHeight};
        })""",
    )
    assert [b["points"] for b in bars] == [48, 14, 48, 14]
    assert all(b["total"] > 0 and b["height"] > 100 for b in bars)

    shot = Image.open(_screenshot(page, tmp_path))
    assert shot.width == 1280 and shot.height > 900
    assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50  # not blank
    for canvas in page.locator("canvas[data-activity]").all():
        box = canvas.bounding_box()
        assert box is not None
        scrolled = page.evaluate("window.scrollY")
        box["y"] += scrolled  # the full-page screenshot starts at the top of the page
        assert _share_of_colour(shot, box, COUNTED_RGB) > 0.005, "no bars drawn"
    context.close()
    assert problems == []
