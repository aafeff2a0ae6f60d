"""Rate limits on battles and votes: per voter, per network prefix and global, API and pages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Sum
from django.test import Client, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from arena import ratelimit
from arena.errors import RateLimited
from arena.models import Arena, Asset, Battle, Prompt, Vote, Voter
from arena.ratelimit import rate_limit_check
from config.env import rate_limits_parse
from tests.factories import ready_arena

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0  # a multiple of 60: minute windows start here
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The limiter's clock, 48 s into a minute window (so 12 s are left of it)."""
    fake = Clock(T0 + 48)
    monkeypatch.setattr(ratelimit, "rate_limit_now", fake)
    return fake


@pytest.fixture
def limits(settings: Any, clock: Clock) -> Callable[..., None]:
    def set_limits(*, battles: str = "", votes: str = "") -> None:
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMIT_BATTLES = rate_limits_parse(name="RATE_LIMIT_BATTLES", text=battles)
        settings.RATE_LIMIT_VOTES = rate_limits_parse(name="RATE_LIMIT_VOTES", text=votes)

    return set_limits


# --- the endpoints, each as "prepare a client, then fire one limited request" ------------------

Fire = Callable[[], Any]  # one request through the test client


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _api_battle(client: Client, arena: Arena) -> dict[str, Any]:
    response = client.post(f"/api/v1/arenas/{arena.slug}/battles", {}, "application/json")
    assert response.status_code == 201, response.content
    return response.json()


def _prepare_api_battle(client: Client, arena: Arena) -> Fire:
    return lambda: client.post(f"/api/v1/arenas/{arena.slug}/battles", {}, "application/json")


def _prepare_api_vote(client: Client, arena: Arena) -> Fire:
    battle = _api_battle(client, arena)
    return lambda: client.post(
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "choice": "A"},
        "application/json",
    )


def _prepare_arena_page(client: Client, arena: Arena) -> Fire:
    return lambda: client.get(f"/arena/{arena.slug}/")


def _prepare_battle_partial(client: Client, arena: Arena) -> Fire:
    return lambda: client.get(f"/arena/{arena.slug}/battle/", headers={"HX-Request": "true"})


def _prepare_page_vote(client: Client, arena: Arena) -> Fire:
    battle = _api_battle(client, arena)
    return lambda: client.post(
        f"/battle/{battle['id']}/vote/",
        {"token": battle["token"], "choice": "A"},
        headers={"HX-Request": "true"},
    )


def _prepare_own_prompt(client: Client, arena: Arena) -> Fire:
    return lambda: client.post(
        f"/arena/{arena.slug}/prompt/?mode=pairwise",
        {"prompt": "a teal bicycle on the moon"},
        headers={"HX-Request": "true"},
    )


@dataclass(frozen=True)
class Endpoint:
    name: str
    action: str  # "battles" or "votes": the setting that limits it
    prepare: Callable[[Client, Arena], Fire]
    is_api: bool
    ok: int


ENDPOINTS = [
    Endpoint("api battle", "battles", _prepare_api_battle, True, 201),
    Endpoint("api vote", "votes", _prepare_api_vote, True, 201),
    Endpoint("arena page", "battles", _prepare_arena_page, False, 200),
    Endpoint("battle partial", "battles", _prepare_battle_partial, False, 200),
    Endpoint("page vote", "votes", _prepare_page_vote, False, 201),
    Endpoint("own prompt page", "battles", _prepare_own_prompt, False, 200),
]


def _client_for(scope: str, attempt: int, shared: Client) -> Client:
    """voter: one browser; prefix: new browsers on one /24; global: new browsers everywhere."""
    if scope == "voter":
        return shared
    if scope == "prefix":
        return Client(REMOTE_ADDR=f"203.0.113.{attempt + 1}")
    return Client(REMOTE_ADDR=f"198.51.{attempt}.7")


def _stored() -> dict[str, Any]:
    voters = Voter.objects.aggregate(
        served=Sum("battles_served"), cast=Sum("votes_cast"), rejected=Sum("rejected_votes")
    )
    return {
        "battles": Battle.objects.count(),
        "votes": Vote.objects.count(),
        "voters": Voter.objects.count(),
        "prompts": Prompt.objects.count(),
        "assets": Asset.objects.count(),
        **voters,
    }


SOURCES = {
    "voter": "from this browser",
    "prefix": "from your network",
    "global": "right now",
}
NOUNS = {"battles": "new battles", "votes": "votes"}


@pytest.mark.parametrize("scope", ["voter", "prefix", "global"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_it_answers_429_past_the_limit_and_stores_nothing(
    limits: Callable[..., None], endpoint: Endpoint, scope: str
) -> None:
    arena = ready_arena(models=2, allow_user_prompts=True)
    limits(**{endpoint.action: f"{scope}=2/m"})
    shared = Client(REMOTE_ADDR="192.0.2.10")
    for attempt in range(2):
        fire = endpoint.prepare(_client_for(scope, attempt, shared), arena)
        assert fire().status_code == endpoint.ok
    fire = endpoint.prepare(_client_for(scope, 2, shared), arena)
    before = _stored()

    response = fire()

    assert response.status_code == 429
    assert response["Retry-After"] == "12"
    assert _stored() == before
    noun = NOUNS[endpoint.action]
    if endpoint.is_api:
        body = response.json()
        assert body["code"] == "rate_limited"
        assert body["detail"] == {"scope": scope, "limit": 2, "window_s": 60, "retry_after_s": 12}
        assert noun in body["error"] and SOURCES[scope] in body["error"]
        assert "at most 2 per minute" in body["error"]
        assert body["error"].endswith("Try again in 12 s.")
    else:
        html = response.content.decode()
        assert f"Too many {noun}" in html or f"too many {noun}" in html
        assert SOURCES[scope] in html
        assert "at most 2 per minute" in html and "Try again in 12 s." in html


def test_a_browser_message_reads_like_a_sentence(limits: Callable[..., None]) -> None:
    arena = ready_arena(models=2)
    limits(votes="voter=30/m")
    client = Client()
    for _ in range(30):
        battle = _api_battle(client, arena)
        vote = client.post(
            f"/api/v1/battles/{battle['id']}/vote",
            {"token": battle["token"], "choice": "A"},
            "application/json",
        )
        assert vote.status_code == 201
    battle = _api_battle(client, arena)

    response = client.post(
        f"/api/v1/battles/{battle['id']}/vote",
        {"token": battle["token"], "choice": "A"},
        "application/json",
    )

    assert response.json()["error"] == (
        "Too many votes from this browser: at most 30 per minute. Try again in 12 s."
    )


def test_a_new_window_lets_requests_through_again(
    limits: Callable[..., None], clock: Clock
) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=1/m")
    client = Client()
    assert _prepare_api_battle(client, arena)().status_code == 201
    assert _prepare_api_battle(client, arena)().status_code == 429

    clock.now += 11  # still the same window
    assert _prepare_api_battle(client, arena)().status_code == 429
    clock.now += 1  # the next minute
    assert _prepare_api_battle(client, arena)().status_code == 201
    assert _prepare_api_battle(client, arena)().status_code == 429


def test_a_browser_at_its_limit_does_not_spend_its_networks_budget(
    limits: Callable[..., None],
) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=1/m,prefix=3/m")
    hammering = Client(REMOTE_ADDR="203.0.113.9")
    _api_battle(hammering, arena)
    for _ in range(5):
        assert _prepare_api_battle(hammering, arena)().status_code == 429

    neighbours = [Client(REMOTE_ADDR=f"203.0.113.{n}") for n in (20, 21)]

    assert [_prepare_api_battle(c, arena)().status_code for c in neighbours] == [201, 201]


def test_a_refused_cookieless_request_creates_no_voter(limits: Callable[..., None]) -> None:
    arena = ready_arena(models=2)
    limits(battles="prefix=1/m")
    assert _prepare_api_battle(Client(), arena)().status_code == 201
    voters = Voter.objects.count()

    assert _prepare_api_battle(Client(), arena)().status_code == 429

    assert Voter.objects.count() == voters


def test_a_voters_first_request_counts(limits: Callable[..., None]) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=2/m")
    client = Client()

    statuses = [_prepare_api_battle(client, arena)().status_code for _ in range(3)]

    assert statuses == [201, 201, 429]


def test_battles_and_votes_are_counted_apart(limits: Callable[..., None]) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=3/m", votes="voter=1/m")
    client = Client()
    first = _prepare_api_vote(client, arena)
    assert first().status_code == 201

    assert _prepare_api_vote(client, arena)().status_code == 429  # the 2nd battle was served


def test_the_switch_turns_every_limit_off(limits: Callable[..., None], settings: Any) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=1/m,prefix=1/m,global=1/m")
    settings.RATE_LIMITS_ENABLED = False
    client = Client()

    assert [_prepare_api_battle(client, arena)().status_code for _ in range(3)] == [201] * 3


def test_the_openapi_schema_lists_429(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()

    battles = schema["paths"]["/api/v1/arenas/{slug}/battles"]["post"]["responses"]
    votes = schema["paths"]["/api/v1/battles/{battle_id}/vote"]["post"]["responses"]
    assert "429" in battles and "429" in votes


# --- the counters ---------------------------------------------------------------------------


def test_its_cache_keys_never_hold_an_address(
    limits: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=5/m,prefix=5/m,global=5/m")
    keys: list[str] = []
    real_count = ratelimit._count

    def spy(counted: list[str], rates: Any) -> Any:
        keys.extend(counted)
        return real_count(counted, rates)

    monkeypatch.setattr(ratelimit, "_count", spy)

    _prepare_api_battle(Client(REMOTE_ADDR="203.0.113.77"), arena)()

    assert keys and not any("203.0.113" in key for key in keys)
    assert {key.split(":")[3] for key in keys} == {"voter", "prefix", "global"}


def test_an_unreachable_redis_lets_requests_through(
    limits: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    arena = ready_arena(models=2)
    limits(battles="voter=1/m,prefix=1/m,global=1/m")

    def down(*args: Any, **kwargs: Any) -> bool:
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "count_hits", down, raising=False)  # Redis's one round trip
    client = Client()

    assert [_prepare_api_battle(client, arena)().status_code for _ in range(3)] == [201] * 3


def _redis_cache() -> dict[str, Any]:
    location = django_settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    return {
        "default": {
            "BACKEND": "config.cache.PooledRedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"test-ratelimit-{uuid.uuid4().hex}",
        }
    }


def _skip_without_redis() -> None:
    try:
        cache.get("ping")
    except Exception as exc:  # any connection error: no Redis on this machine
        pytest.skip(f"no Redis at {django_settings.REDIS_URL or 'the default port'}: {exc}")


def test_it_counts_in_redis_when_one_is_reachable(clock: Clock, settings: Any) -> None:
    with override_settings(CACHES=_redis_cache()):
        _skip_without_redis()
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMIT_VOTES = {"voter": (2, 60)}
        identities = {"voter": "v-1"}
        assert type(caches["default"]).__name__ == "PooledRedisCache"

        rate_limit_check(action="vote", identities=identities)
        rate_limit_check(action="vote", identities=identities)
        with pytest.raises(RateLimited) as refused:
            rate_limit_check(action="vote", identities=identities)
        clock.now += 12
        rate_limit_check(action="vote", identities=identities)

    assert refused.value.detail["retry_after_s"] == 12


def test_redis_counts_the_scopes_narrowest_first_and_stops_at_the_first_refusal(
    clock: Clock, settings: Any
) -> None:
    with override_settings(CACHES=_redis_cache()):
        _skip_without_redis()
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMIT_VOTES = {"voter": (1, 60), "prefix": (3, 60), "global": (100, 3600)}
        one = {"voter": "v-1", "prefix": "p-1", "global": "all"}
        rate_limit_check(action="vote", identities=one)
        for _ in range(3):  # refused by its own budget, which spares the network's
            with pytest.raises(RateLimited) as refused:
                rate_limit_check(action="vote", identities=one)
            assert refused.value.detail["scope"] == "voter"
        for voter in ("v-2", "v-3"):  # two more browsers of that network fill its budget
            rate_limit_check(action="vote", identities={**one, "voter": voter})
        with pytest.raises(RateLimited) as network:
            rate_limit_check(action="vote", identities={**one, "voter": "v-4"})

        assert network.value.detail["scope"] == "prefix"
        client = caches["default"].redis_client()  # type: ignore[attr-defined]
        counters = sorted(k.decode() for k in client.keys(f"{cache.key_prefix}*"))
        assert len(counters) == 6  # four voters, one network, everybody
        assert all(0 < client.ttl(key) <= 61 for key in counters if ":60:" in key)
        assert all(3600 < client.ttl(key) <= 3601 for key in counters if ":3600:" in key)
        # Everybody's budget holds the three requests let through, none of the refused ones.
        assert int(client.get(next(k for k in counters if ":global:" in k))) == 3


def test_redis_counts_on_after_its_scripts_are_flushed_and_its_connections_killed(
    clock: Clock, settings: Any
) -> None:
    """What a restarted Redis looks like to a web process: the counting script is gone, and
    the connections the pool holds are dead. The next count loads the script again and takes a
    new connection; nothing is refused or let through uncounted."""
    with override_settings(CACHES=_redis_cache()):
        _skip_without_redis()
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMIT_VOTES = {"voter": (3, 60)}
        identities = {"voter": "v-1"}
        rate_limit_check(action="vote", identities=identities)
        client = caches["default"].redis_client()  # type: ignore[attr-defined]

        client.script_flush()
        rate_limit_check(action="vote", identities=identities)
        admin = redis.Redis.from_url(_redis_cache()["default"]["LOCATION"])
        me = client.client_id()  # (a connection of the pool, now idle in it)
        assert admin.client_kill_filter(_id=me) == 1
        rate_limit_check(action="vote", identities=identities)
        with pytest.raises(RateLimited):
            rate_limit_check(action="vote", identities=identities)

        counter = next(k for k in client.keys(f"{cache.key_prefix}*") if b":voter:" in k)
        assert int(client.get(counter)) == 4  # three let through, the fourth refused


def test_an_unreachable_redis_lets_the_count_through(clock: Clock, settings: Any) -> None:
    dead = {"default": {"BACKEND": "config.cache.PooledRedisCache",
                        "LOCATION": "redis://127.0.0.1:9/0"}}  # fmt: skip
    with override_settings(CACHES=dead):
        settings.RATE_LIMITS_ENABLED = True
        settings.RATE_LIMIT_VOTES = {"voter": (1, 60)}
        for _ in range(3):
            rate_limit_check(action="vote", identities={"voter": "v-1"})  # no RateLimited


def _settings_in_subprocess(
    env: dict[str, str], expression: str
) -> subprocess.CompletedProcess[str]:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RATE_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ARENA_NO_BOOTSTRAP": "1",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cache_is_redis_when_redis_url_is_set() -> None:
    done = _settings_in_subprocess(
        {"REDIS_URL": "redis://127.0.0.1:6379/0"}, "settings.CACHES['default']['BACKEND']"
    )

    assert done.stdout.strip() == "config.cache.PooledRedisCache", done.stderr


def test_a_bad_limit_in_the_environment_stops_start_up() -> None:
    done = _settings_in_subprocess({"RATE_LIMIT_VOTES": "voter=lots"}, "1")

    assert done.returncode != 0
    assert "RATE_LIMIT_VOTES" in done.stderr and "ImproperlyConfigured" in done.stderr


# --- parsing -------------------------------------------------------------------------------


def test_it_parses_rates_per_scope() -> None:
    parsed = rate_limits_parse(name="X", text=" voter=60/m, prefix=600/10min ,global=5000/h ")

    assert parsed == {
        "voter": (60, 60),
        "prefix": (600, 600),
        "global": (5000, 3600),
    }


def test_an_empty_setting_limits_nothing() -> None:
    assert rate_limits_parse(name="X", text="") == {}


@pytest.mark.parametrize(
    "text",
    ["voter", "voter=60", "voter=60/fortnight", "user=60/m", "voter=0/m", "voter=1/m,voter=2/m"],
)
def test_it_refuses_a_bad_setting_naming_it(text: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^RATE_LIMIT_BATTLES"):
        rate_limits_parse(name="RATE_LIMIT_BATTLES", text=text)


def test_the_default_limits_leave_a_human_alone() -> None:
    battles, votes = django_settings.RATE_LIMIT_BATTLES, django_settings.RATE_LIMIT_VOTES

    (battle_limit, battle_window_s), (vote_limit, vote_window_s) = battles["voter"], votes["voter"]
    assert battle_limit / battle_window_s >= 0.5  # a battle every 2 s
    assert vote_limit / vote_window_s >= 0.25  # a vote every 4 s
    assert {"voter", "prefix", "global"} <= set(battles) & set(votes)
