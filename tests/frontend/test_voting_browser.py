"""A person's path through the arena, in headless Chromium against the live server.

Open a battle in each arena type, check that images, videos and 3D viewers really loaded, vote in
pairwise, best-of-K and rank-K modes, see the names revealed, and get the next battle without a
page reload.
"""

from __future__ import annotations

import os
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

from django.core.management import call_command  # noqa: E402
from django.test import testcases  # noqa: E402

from arena.models import Battle, BattleState, Vote  # noqa: E402
from workers.generation import asset_generate  # noqa: E402

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 90_000  # 3D through SwiftShader is slow but must finish


@pytest.fixture(scope="module")
def demo_dump(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path]]:
    """Seed the demo arenas (two prompts each) and generate their outputs once per module.

    live_server makes every test transactional (the database is flushed after each), so the rows
    are dumped here and loaded again by each test; the media files stay in one folder.
    """
    from django.test import override_settings

    folder = tmp_path_factory.mktemp("browser-demo")
    media, dump = folder / "media", folder / "demo.json"
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        call_command("seed_demo", "--prompts", "2", verbosity=0)
        call_command("pregenerate", "--jobs", "2", verbosity=0)
        call_command("dumpdata", "arena", output=str(dump), verbosity=0)
        call_command("flush", interactive=False, verbosity=0)
    yield media, dump


@pytest.fixture
def demo_arenas(transactional_db: None, demo_dump: tuple[Path, Path], settings: Any) -> Path:
    media, dump = demo_dump
    settings.MEDIA_ROOT = media
    call_command("loaddata", str(dump), verbosity=0)
    return media


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(
    browser: Any, live_server: Any, demo_arenas: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    # The live server answers /media/ itself, without byte ranges; let the app's own media
    # view (with Range support, as in production) serve it so that videos can seek.
    monkeypatch.setattr(testcases._MediaFilesHandler, "_should_handle", lambda self, path: False)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_page(page)
    yield page
    context.close()
    assert problems == []


def _wait_ready(page: Any) -> str:
    page.wait_for_selector('.battle[data-ready="true"], .slot[data-error]', timeout=LOAD_TIMEOUT_MS)
    errors = page.eval_on_selector_all(".slot[data-error]", "els => els.map(e => e.dataset.error)")
    assert errors == []
    return str(page.locator(".battle").get_attribute("data-battle-id"))


def _revealed_names(page: Any) -> dict[str, str]:
    # Four 3D viewers rendering through SwiftShader keep the page's main thread busy on a loaded
    # 2-core machine: the reveal gets the same allowance as the load.
    page.wait_for_selector("#next-battle", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('.slot-foot.revealed .slot-model').length === document.querySelectorAll('figure.slot').length",
        timeout=LOAD_TIMEOUT_MS,
    )
    return {
        foot.get_attribute("id").removeprefix("slot-foot-"): foot.locator(".slot-model")
        .inner_text()
        .strip()
        for foot in page.locator(".slot-foot.revealed").all()
    }


def _expected_names(battle_id: str) -> dict[str, str]:
    battle = Battle.objects.get(public_id=battle_id)
    return {slot.label: slot.model.name for slot in battle.slots.select_related("model")}


def _media_loaded(page: Any, media: str) -> bool:
    script = {
        "image": "els => els.every(e => e.complete && e.naturalWidth > 0)",
        "video": "els => els.every(e => e.readyState >= 2 && e.videoWidth > 0)",
        "mesh": "els => els.every(e => e.loaded === true)",
        "splat": "els => els.every(e => e.closest('.slot').dataset.loaded === 'true' && e.querySelector('canvas'))",
    }[media]
    selector = {
        "image": ".slot img",
        "video": ".slot video",
        "mesh": ".slot model-viewer",
        "splat": ".slot .splat-host",
    }[media]
    return bool(page.eval_on_selector_all(selector, script)) and page.locator(selector).count() > 0


@pytest.mark.parametrize(
    ("arena", "media"),
    [
        ("text-to-image", {"image"}),
        ("text-to-video", {"video"}),
        ("image-to-3d", {"mesh"}),
        ("image-to-splat", {"splat"}),
    ],
)
def test_a_voter_votes_in_every_mode_and_sees_names_revealed(
    page: Any, live_server: Any, arena: str, media: set[str]
) -> None:
    # Pairwise: the first battle, voted with a click.
    page.goto(f"{live_server.url}/arena/{arena}/?mode=pairwise")
    battle_id = _wait_ready(page)
    shown = {page.locator("figure.slot").nth(i).get_attribute("data-media") for i in range(2)}
    assert shown <= media
    for kind in shown:
        assert _media_loaded(page, kind), f"{kind} did not load"
    assert page.locator(".slot-model").count() == 0, "no names before the vote"
    page.evaluate("window.__samePage = true")
    page.click("button[value=A]")
    assert _revealed_names(page) == _expected_names(battle_id)

    # "Next battle" swaps a new battle in without reloading the page.
    page.click("#next-battle")
    page.wait_for_function(
        f"() => document.querySelector('.battle') && document.querySelector('.battle').dataset.battleId !== '{battle_id}'"
    )
    next_id = _wait_ready(page)
    assert page.evaluate("window.__samePage") is True
    page.keyboard.press("t")  # keyboard shortcut: tie
    assert _revealed_names(page) == _expected_names(next_id)

    # Best of K: pick slot C with the keyboard.
    page.goto(f"{live_server.url}/arena/{arena}/?mode=best_of_k")
    battle_id = _wait_ready(page)
    assert page.locator("figure.slot").count() == 4
    page.keyboard.press("3")
    assert _revealed_names(page) == _expected_names(battle_id)
    assert Battle.objects.get(public_id=battle_id).vote.slot_ranking[0] == ["C"]

    # Rank K: submit stays disabled until every output has a rank; ties allowed.
    page.goto(f"{live_server.url}/arena/{arena}/?mode=rank_k")
    battle_id = _wait_ready(page)
    submit = page.locator("[data-rank-submit]")
    for label, rank in (("A", 2), ("B", 1), ("C", 2)):
        page.click(f".slot[data-slot={label}] .rank-option:has(input[value='{rank}'])")
        assert submit.is_disabled()
    page.click(".slot[data-slot=D] .rank-option:has(input[value='4'])")
    assert submit.is_enabled()
    submit.click()
    assert _revealed_names(page) == _expected_names(battle_id)
    assert Battle.objects.get(public_id=battle_id).vote.slot_ranking == [["B"], ["A", "C"], ["D"]]


def test_the_video_controls_drive_every_video(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/arena/text-to-video/?mode=rank_k")
    _wait_ready(page)
    assert page.locator(".video-controls").is_visible()

    page.click(".vc-play")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.slot video')].every(v => !v.paused)",
        timeout=10_000,
    )
    page.click(".vc-play")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.slot video')].every(v => v.paused)",
        timeout=10_000,
    )
    # One scrub bar seeks every video to the same moment.
    page.eval_on_selector(
        ".vc-scrub",
        "el => { el.value = '500'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.slot video')].every(v => !v.seeking && v.currentTime > 0.5)",
        timeout=10_000,
    )
    times = page.eval_on_selector_all(".slot video", "vs => vs.map(v => v.currentTime)")
    assert max(times) - min(times) < 0.15, times


def _no_vote_after_keys(page: Any, battle_id: str, keys: list[str]) -> None:
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_timeout(700)  # a vote would have come back by now (the click path takes ~100 ms)
    assert page.locator("#next-battle").count() == 0
    assert not Vote.objects.filter(battle__public_id=battle_id).exists()


def test_single_key_shortcuts_vote_and_a_voter_can_turn_them_off(
    page: Any, live_server: Any
) -> None:
    page.goto(f"{live_server.url}/arena/text-to-image/?mode=pairwise")
    battle_id = _wait_ready(page)
    toggle = page.locator("#vote-shortcuts-toggle")
    assert toggle.is_checked() and page.locator(".key-hint").first.is_visible()

    # Keys typed into a field, or pressed with Ctrl/Alt, are not votes.
    page.click(".own-prompt summary")
    page.focus("#own-prompt-text")
    _no_vote_after_keys(page, battle_id, ["a", "b", "t"])
    assert page.input_value("#own-prompt-text") == "abt"
    page.evaluate("document.activeElement.blur()")
    _no_vote_after_keys(page, battle_id, ["Alt+a", "Control+b"])

    # The voter turns them off: no key votes, no key hints; the choice outlives a reload.
    toggle.uncheck()
    assert page.evaluate("document.body.dataset.voteShortcuts") == "off"
    assert not page.locator(".key-hint").first.is_visible()
    page.evaluate("document.activeElement.blur()")
    _no_vote_after_keys(page, battle_id, ["a", "ArrowRight", "x"])
    page.reload()
    battle_id = _wait_ready(page)
    assert not toggle.is_checked()
    _no_vote_after_keys(page, battle_id, ["b", "t"])

    # ... and on again: a key votes.
    toggle.check()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("b")
    assert _revealed_names(page) == _expected_names(battle_id)
    assert Battle.objects.get(public_id=battle_id).vote.slot_ranking[0] == ["B"]


def test_the_vote_shortcuts_setting_turns_every_key_off(
    page: Any, live_server: Any, settings: Any
) -> None:
    settings.VOTE_SHORTCUTS = False
    page.goto(f"{live_server.url}/arena/text-to-image/?mode=pairwise")
    battle_id = _wait_ready(page)

    assert page.evaluate("document.body.dataset.voteShortcuts") == "off"
    assert page.locator("#vote-shortcuts-toggle, kbd").count() == 0
    _no_vote_after_keys(page, battle_id, ["a", "b", "ArrowLeft", "t", "x"])

    page.click("button[value=A]")  # the buttons still vote
    assert _revealed_names(page) == _expected_names(battle_id)
    page.keyboard.press("n")
    page.wait_for_timeout(700)
    assert page.locator("#next-battle").count() == 1, "N did not load the next battle"


SENT_JOBS: list[dict[str, Any]] = []


def record_job(**job: Any) -> None:
    """Generation jobs are recorded, not sent: the test generates the outputs itself."""
    SENT_JOBS.append(job)


def test_the_progress_of_an_own_prompt_is_read_out_from_a_live_region(
    page: Any, live_server: Any, settings: Any
) -> None:
    settings.GENERATION_JOB_SENDER = f"{__name__}.record_job"
    polls: list[int] = []
    page.on("response", lambda r: polls.append(r.status) if "/progress/" in r.url else None)
    page.goto(f"{live_server.url}/arena/text-to-image/?mode=pairwise")
    _wait_ready(page)
    page.click(".own-prompt summary")
    page.fill("#own-prompt-text", "a lighthouse in a thunderstorm")
    page.click(".own-prompt-form button[type=submit]")

    region = page.locator("#generation-status")
    region.wait_for()
    assert (region.get_attribute("role"), region.get_attribute("aria-live")) == ("status", "polite")
    assert "0 of 2 ready" in region.inner_text()
    battle = Battle.objects.get(state=BattleState.GENERATING)
    first, second = battle.slots.order_by("position").values_list("asset_id", flat=True)
    # The first poll writes the text again into the region, now that it is in the page; then
    # polls that find nothing new change nothing in it (204).
    page.wait_for_function("() => document.querySelector('#generation-seen')?.value !== ''")
    page.evaluate(
        """() => { window.__region = document.getElementById('generation-status');
                   window.__changes = 0;
                   new MutationObserver(() => window.__changes++).observe(window.__region,
                       {childList: true, characterData: true, subtree: true}); }"""
    )
    page.wait_for_timeout(2500)
    assert page.evaluate("window.__changes") == 0
    assert 204 in polls

    asset_generate(asset_id=first)
    page.wait_for_function(
        """() => document.getElementById('generation-status') === window.__region
                 && window.__region.textContent.includes('1 of 2 ready')""",
        timeout=15_000,
    )
    assert page.eval_on_selector("progress.generation-bar", "p => [p.value, p.max]") == [1, 2]

    asset_generate(asset_id=second)
    battle_id = _wait_ready(page)
    assert battle_id == str(battle.public_id)
    assert page.locator("#generation-status").count() == 0
