"""The leaderboard page in headless Chromium against the live server: both charts draw from the
vendored Chart.js, nothing loads from another host, and the tables stand alone without JS.

Set ARENA_SCREENSHOTS=<folder> to keep full-page screenshots of what the tests saw.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, require_chromium, watch_page

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")

# playwright's sync API runs an event loop in this thread; the ORM calls below are still
# synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from arena.models import Arena, GenerativeModel  # noqa: E402
from tests.arena.test_leaderboards import _best_name_wins, _cast  # noqa: E402
from tests.factories import VoterFactory, ready_arena  # noqa: E402

pytestmark = pytest.mark.browser

CHART_STATE = """canvas => {
    const chart = Chart.getChart(canvas);
    if (!chart) return null;
    return {
        type: chart.config.type,
        datasets: chart.data.datasets.length,
        points: chart.data.datasets.map(d => d.data.length),
        first: chart.data.datasets[0] && chart.data.datasets[0].data[0],
        width: canvas.clientWidth,
        height: canvas.clientHeight,
    };
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def _open(browser: Any, *, width: int = 1280, height: int = 900) -> tuple[Any, Any, list[str]]:
    # Reduced motion: leaderboard.js then draws without animation, so screenshots are final.
    context = browser.new_context(
        viewport={"width": width, "height": height}, reduced_motion="reduce"
    )
    page = context.new_page()
    problems = watch_page(page)
    return context, page, problems


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("ARENA_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _voted_arena(votes: int, seed: int = 7) -> Arena:
    arena = ready_arena(models=6, name="Text to image", slug="text-to-image")
    labs = ["Northwind AI", "Lumen Labs", "Pixel Forge", "Open Canvas", "Studio Nine", ""]
    for model, lab in zip(GenerativeModel.objects.order_by("pk"), labs, strict=True):
        model.organisation = lab
        model.link = "https://example.org/" + model.slug if lab else ""
        model.save()
    voter, rng = VoterFactory.create(), random.Random(seed)
    for _ in range(votes):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)
    return arena


def test_it_draws_both_charts_from_local_assets(
    browser: Any, live_server: Any, transactional_db: None
) -> None:
    arena = _voted_arena(votes=6)
    url = f"{live_server.url}/arena/{arena.slug}/leaderboard/"
    context, page, problems = _open(browser)
    page.goto(url)  # the first snapshot
    voter, rng = VoterFactory.create(), random.Random(8)
    for _ in range(10):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)

    page.goto(url)  # a second snapshot: the history has two points per model
    page.wait_for_function("() => document.querySelector('[data-lb-charts]').hidden === false")
    page.wait_for_function("() => Chart.getChart(document.getElementById('lb-history-chart'))")

    scores = page.eval_on_selector("#lb-scores-chart", CHART_STATE)
    history = page.eval_on_selector("#lb-history-chart", CHART_STATE)
    assert scores is not None and history is not None
    assert scores["type"] == "lineWithErrorBars"
    assert scores["datasets"] == 1 and scores["points"] == [6]
    assert scores["first"]["xMin"] < scores["first"]["x"] < scores["first"]["xMax"]
    assert history["datasets"] == 6 and history["points"] == [2] * 6
    assert scores["height"] > 200 and history["width"] > 300
    assert page.locator("tr[data-model]").count() == 6
    assert page.locator("td.hm").count() > 0
    _screenshot(page, "leaderboard-bayesian")

    page.click("a.tab[href='?method=elo']")
    page.wait_for_url("**/leaderboard/?method=elo")
    page.wait_for_function("() => Chart.getChart(document.getElementById('lb-scores-chart'))")
    elo = page.eval_on_selector("#lb-scores-chart", CHART_STATE)
    assert elo is not None and elo["datasets"] == 1
    assert "xMin" not in elo["first"]
    assert page.locator("text=ELO has no confidence interval").count() == 1
    _screenshot(page, "leaderboard-elo")

    context.close()
    assert problems == []


def test_it_fits_a_phone_screen(browser: Any, live_server: Any, transactional_db: None) -> None:
    arena = _voted_arena(votes=8)
    context, page, problems = _open(browser, width=390, height=844)

    page.goto(f"{live_server.url}/arena/{arena.slug}/leaderboard/?method=bradley_terry")
    page.wait_for_function("() => Chart.getChart(document.getElementById('lb-scores-chart'))")

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "wide tables scroll inside their own box, not the page"
    _screenshot(page, "leaderboard-phone")
    context.close()
    assert problems == []


def test_it_keeps_the_tables_when_the_chart_library_fails(
    browser: Any, live_server: Any, transactional_db: None
) -> None:
    arena = _voted_arena(votes=4)
    context, page, _ = _open(browser)
    page.route("**/chart.umd.min.js", lambda route: route.abort())

    page.goto(f"{live_server.url}/arena/{arena.slug}/leaderboard/")
    page.wait_for_load_state("load")

    assert page.locator("[data-lb-charts]").is_hidden()
    assert page.locator("tr[data-model]").count() == 6
    assert page.locator("table.lb-heatmap").is_visible()
    context.close()


def test_it_shows_the_empty_state_without_charts(
    browser: Any, live_server: Any, transactional_db: None
) -> None:
    arena = ready_arena(models=3)
    context, page, problems = _open(browser)

    page.goto(f"{live_server.url}/arena/{arena.slug}/leaderboard/")

    assert page.locator("text=No votes yet — be the first").is_visible()
    assert page.locator("canvas").count() == 0
    _screenshot(page, "leaderboard-empty")
    context.close()
    assert problems == []
