"""The fraud review pages in headless Chromium: a reviewer sees the voter's choices plotted
against the crowd (vendored Chart.js, nothing from another host) and clears the voter.

Set ARENA_SCREENSHOTS=<folder> to keep full-page screenshots of what the test saw.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium, require_chromium, watch_page
from tests.frontend.test_leaderboard_browser import _screenshot

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from arena import fraud  # noqa: E402
from arena.models import VoteExclusion, VoterFlag  # noqa: E402
from tests.arena.test_fraud import promoter_votes  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def _excluded_promoter() -> tuple[Any, Any]:
    arena, bot = promoter_votes()
    fraud.fraud_scan(arena=arena)
    assert VoterFlag.objects.get(voter=bot).is_excluding
    return arena, bot


def test_a_reviewer_sees_the_plot_and_clears_the_voter(
    browser: Any, live_server: Any, transactional_db: None, django_user_model: Any
) -> None:
    arena, bot = _excluded_promoter()
    django_user_model.objects.create_superuser("reviewer", "r@example.org", "a long passphrase 9")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_page(page)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/fraud/{arena.slug}/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "a long passphrase 9")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/admin/fraud/{arena.slug}/")
    assert page.locator("#review-queue tbody tr").count() >= 1
    _screenshot(page, "fraud-arena")

    page.click(f"#review-queue a[href*='{bot.public_id}']")
    # Until the voter page has loaded, the arena page (no Chart.js) is still the document.
    page.wait_for_url(f"**/voter/{bot.public_id}/")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('choice-chart'))"
    )
    chart = page.eval_on_selector(
        "#choice-chart",
        """canvas => { const c = Chart.getChart(canvas);
            const line = c.data.datasets[2].data;
            return {datasets: c.data.datasets.length, points: c.data.datasets[0].data.length,
                    last_e: line[line.length - 1].y, height: canvas.clientHeight}; }""",
    )
    series = fraud.voter_choice_series(flag=VoterFlag.objects.get(voter=bot))
    assert chart["datasets"] == 3 and chart["points"] == len(series) > 0
    assert chart["last_e"] == pytest.approx(series[-1]["log_e"])  # plotted as stored: log10
    assert chart["height"] > 200
    assert page.locator("#detectors").inner_text().count("strong") >= 1
    _screenshot(page, "fraud-voter")

    page.fill("#note", "looked at every vote")
    page.click("#review-form button[value=clear]")
    page.wait_for_selector("#review:has-text('Cleared')")
    assert not VoteExclusion.objects.filter(vote__voter=bot).exists()
    assert "looked at every vote" in page.locator("#audit-log").inner_text()
    context.close()
    assert problems == []
