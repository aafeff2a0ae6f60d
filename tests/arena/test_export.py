"""An arena's votes exported as a dataset: rows, pseudonyms, card, checksums and bad input."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from arena.clock import SimulatedClock as Clock
from arena.exports import FIELDS
from arena.leaderboards import leaderboard_current, ratings_replay, voters_trust_set, votes_exclude
from arena.models import Arena, ArenaTally, Prompt, PromptSet, Vote
from arena.services import USER_PROMPT_SET
from ranking.replay import main as replay_main
from ranking.replay import replay_export
from tests.arena.test_fraud import cast, honest
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


@pytest.fixture
def voted(monkeypatch: pytest.MonkeyPatch) -> Arena:
    """Three voters, 12 votes; the first two votes excluded by fraud detection."""
    clock = Clock(timezone.now() - timedelta(days=2))
    monkeypatch.setattr(timezone, "now", clock)
    arena = ready_arena(models=3)
    rng = random.Random(3)
    for i in range(3):
        voter = VoterFactory.create()
        for _ in range(4):
            cast(arena, voter, honest(arena), clock, rng, ip=f"198.51.100.{i + 1}")
    first_two = list(Vote.objects.filter(arena=arena).order_by("pk")[:2])
    votes_exclude(arena_id=arena.pk, votes=first_two, reason="test", reasons=["speed", "rate"])
    return arena


def _export(arena: Arena, out: Path, *args: str) -> None:
    call_command("export_votes", "--arena", arena.slug, "--out", str(out), *args, verbosity=0)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_vote_is_a_row_with_what_a_researcher_needs(voted: Arena, tmp_path: Path) -> None:
    _export(voted, tmp_path / "out")

    rows = _jsonl(tmp_path / "out" / "votes.jsonl")
    votes = list(Vote.objects.filter(arena=voted).order_by("pk").select_related("battle__prompt"))
    assert [r["vote_id"] for r in rows] == [v.pk for v in votes]
    assert list(rows[0]) == list(FIELDS)
    slugs = dict(voted.generative_models.values_list("pk", "slug"))
    for row, vote in zip(rows, votes, strict=True):
        assert row["prompt"] == vote.battle.prompt.text
        shown = vote.battle.slots.order_by("position").values_list("model_id", flat=True)
        assert row["models"] == [slugs[m] for m in shown]
        assert row["ranking"] == [[slugs[m] for m in group] for group in vote.ranking]
        assert row["outcome"] == vote.outcome and row["time_to_vote_ms"] == vote.time_to_vote_ms
    assert [(r["counts"], r["excluded_because"]) for r in rows[:3]] == [
        (False, ["speed", "rate"]), (False, ["speed", "rate"]), (True, []),
    ]  # fmt: skip
    assert rows[0]["weight"] == 0.0 and rows[2]["weight"] == pytest.approx(0.1)  # one sitting


def test_voters_are_pseudonyms_that_do_not_link_across_exports(
    voted: Arena, tmp_path: Path
) -> None:
    _export(voted, tmp_path / "a")
    _export(voted, tmp_path / "b")

    a, b = _jsonl(tmp_path / "a" / "votes.jsonl"), _jsonl(tmp_path / "b" / "votes.jsonl")
    assert len({r["voter"] for r in a}) == 3, "stable within one export"
    assert not {r["voter"] for r in a} & {r["voter"] for r in b}, "unlinkable across exports"
    text = (tmp_path / "a" / "votes.jsonl").read_text()
    for vote in Vote.objects.filter(arena=voted):
        assert str(vote.voter.public_id) not in text
        assert vote.prefix_hash not in text and vote.client_hash not in text
    assert "198.51.100" not in text


def test_csv_holds_the_same_rows(voted: Arena, tmp_path: Path) -> None:
    _export(voted, tmp_path / "j")
    _export(voted, tmp_path / "c", "--format", "csv")

    with (tmp_path / "c" / "votes.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = _jsonl(tmp_path / "j" / "votes.jsonl")
    assert [int(r["vote_id"]) for r in rows] == [r["vote_id"] for r in expected]
    assert [json.loads(r["ranking"]) for r in rows] == [r["ranking"] for r in expected]
    assert [r["counts"] for r in rows[:3]] == ["False", "False", "True"]


def test_parquet_holds_the_same_rows(voted: Arena, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    _export(voted, tmp_path / "j")
    _export(voted, tmp_path / "p", "--format", "parquet")

    rows = pq.read_table(tmp_path / "p" / "votes.parquet").to_pylist()
    expected = _jsonl(tmp_path / "j" / "votes.jsonl")
    strip = ("voter",)  # pseudonyms differ by export
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows] == [
        {k: v for k, v in r.items() if k not in strip} for r in expected
    ]


def test_without_pyarrow_parquet_is_refused_with_how_to_get_it(
    voted: Arena, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )

    with pytest.raises(CommandError, match=r"Parquet needs pyarrow.*genai-arena\[export\]"):
        _export(voted, tmp_path / "out", "--format", "parquet")

    assert not (tmp_path / "out").exists()


def test_the_card_and_checksums_describe_the_files(voted: Arena, tmp_path: Path) -> None:
    _export(voted, tmp_path / "out", "--license", "cc0-1.0")

    card = (tmp_path / "out" / "README.md").read_text()
    assert card.startswith('---\nlicense: "cc0-1.0"\npretty_name: "')
    assert "Votes: 12, of which the leaderboard counts 10" in card
    assert ArenaTally.objects.get(arena=voted).digest in card
    assert all(f"`{name}`" in card for name in FIELDS)
    sums = (tmp_path / "out" / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 3  # votes, card, leaderboard.json
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest() == digest


def test_since_keeps_only_later_votes(voted: Arena, tmp_path: Path) -> None:
    votes = list(Vote.objects.filter(arena=voted).order_by("pk"))
    cut = votes[6].created_at

    _export(voted, tmp_path / "out", "--since", cut.isoformat())

    assert [r["vote_id"] for r in _jsonl(tmp_path / "out" / "votes.jsonl")] == [
        v.pk for v in votes[6:]
    ]
    # Part of the log cannot be replayed into the whole leaderboard: it does not pretend to.
    assert not (tmp_path / "out" / "leaderboard.json").exists()
    assert "a partial export" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "Unknown format 'xml'"),
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    ],
)
def test_bad_options_are_refused_and_write_nothing(
    voted: Arena, tmp_path: Path, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        _export(voted, tmp_path / "out", *args)

    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_unknown_arena_or_a_used_folder_is_refused(voted: Arena, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Unknown arena 'nowhere'"):
        call_command("export_votes", "--arena", "nowhere", "--out", str(tmp_path / "x"))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")

    with pytest.raises(CommandError, match="not an empty folder"):
        _export(voted, tmp_path / "used")

    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]


# -- anyone can recompute the leaderboard from an export -----------------------------------------


def _trusted(arena: Arena) -> None:
    """Give one voter full trust, so the export holds votes of two weights."""
    voter_id = (
        Vote.objects.filter(arena=arena).order_by("-pk").values_list("voter_id", flat=True)[0]
    )
    voters_trust_set(arena_id=arena.pk, trust={voter_id: 1.0})
    ratings_replay(arena_id=arena.pk)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_replay_recomputes_the_live_leaderboard_from_the_export_alone(
    voted: Arena, tmp_path: Path, fmt: str
) -> None:
    _trusted(voted)
    _export(voted, tmp_path / "out", "--format", fmt)

    result = replay_export(tmp_path / "out")

    live = ArenaTally.objects.get(arena=voted)
    assert result.vote_set_hash == live.digest == result.expected_hash
    assert result.votes == live.votes == 10
    assert result.mismatches == [] and result.matches
    snapshot = leaderboard_current(arena=voted, method="bradley_terry")
    assert snapshot is not None
    slugs = dict(voted.generative_models.values_list("pk", "slug"))
    mine = {s.player: round(s.score, 2) for s in result.standings["bradley_terry"]}
    assert mine == {slugs[r["model_id"]]: r["score"] for r in snapshot.snapshot.standings}


def test_the_replay_says_so_when_the_export_was_tampered_with(
    voted: Arena, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _export(voted, tmp_path / "out")
    path = tmp_path / "out" / "votes.jsonl"
    rows = _jsonl(path)
    rows[5]["ranking"] = rows[5]["ranking"][::-1]  # one vote turned round
    rows = [r for r in rows if r["vote_id"] != rows[-1]["vote_id"]]  # and one dropped
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert replay_main([str(tmp_path / "out")]) == 1

    out = capsys.readouterr().out
    assert "mismatch: the vote-set hash differs" in out
    assert "mismatch: bradley_terry" in out or "mismatch: elo" in out


def test_the_replay_refuses_a_folder_that_is_not_an_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert replay_main([str(tmp_path)]) == 2
    assert "leaderboard.json cannot be read" in capsys.readouterr().err


# -- downloads --------------------------------------------------------------------------------


def _download(client: Any, arena: Arena) -> Any:
    return client.get(f"/arena/{arena.slug}/votes.jsonl")


def test_staff_download_the_votes_as_json_lines(voted: Arena, admin_client: Any) -> None:
    answer = _download(admin_client, voted)

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/x-ndjson")
    assert f'filename="{voted.slug}-votes.jsonl"' in answer["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(answer.streaming_content).splitlines()]
    assert [r["vote_id"] for r in rows] == list(
        Vote.objects.filter(arena=voted).order_by("pk").values_list("pk", flat=True)
    )
    assert len({r["voter"] for r in rows}) == 3


def test_the_public_downloads_only_what_an_arena_publishes(voted: Arena, client: Any) -> None:
    refused = _download(client, voted)
    page = client.get(f"/arena/{voted.slug}/leaderboard/").content.decode()

    assert refused.status_code == 404
    assert "does not publish its votes" in refused.content.decode()
    assert "lb-download" not in page

    Arena.objects.filter(pk=voted.pk).update(publish_votes=True)

    public = _download(client, voted)
    assert public.status_code == 200
    assert 'id="lb-download"' in client.get(f"/arena/{voted.slug}/leaderboard/").content.decode()
    rows = [json.loads(line) for line in b"".join(public.streaming_content).splitlines()]
    # No oracle for tuning a campaign: exclusions say only that they happened.
    assert [r["excluded_because"] for r in rows[:3]] == [["excluded"], ["excluded"], []]
    assert {r["too_fast"] for r in rows} == {None}
    assert client.get("/arena/no-such-arena/votes.jsonl").status_code == 404


def test_the_arena_admin_action_downloads_one_arena(voted: Arena, admin_client: Any) -> None:
    one = admin_client.post(
        "/admin/arena/arena/", {"action": "download_votes", "_selected_action": [voted.pk]}
    )
    other = ready_arena(models=2)
    two = admin_client.post(
        "/admin/arena/arena/",
        {"action": "download_votes", "_selected_action": [voted.pk, other.pk]},
        follow=True,
    )

    assert one.status_code == 302 and one["Location"] == f"/arena/{voted.slug}/votes.jsonl"
    assert "Select exactly one arena" in two.content.decode()


def test_the_replay_refuses_rows_out_of_order(voted: Arena, tmp_path: Path) -> None:
    _export(voted, tmp_path / "out")
    path = tmp_path / "out" / "votes.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")

    with pytest.raises(ValueError, match="not in id order"):
        replay_export(tmp_path / "out")


def test_the_public_download_leaves_out_prompts_voters_typed(
    voted: Arena, client: Any, admin_client: Any
) -> None:
    vote = Vote.objects.filter(arena=voted).order_by("pk").select_related("battle__prompt").last()
    assert vote is not None
    typed = PromptSet.objects.create(slug=f"{USER_PROMPT_SET}-{voted.slug}", name="typed")
    Prompt.objects.filter(pk=vote.battle.prompt_id).update(prompt_set=typed)
    Arena.objects.filter(pk=voted.pk).update(publish_votes=True)

    def last_row(who: Any) -> dict[str, Any]:
        return json.loads(b"".join(_download(who, voted).streaming_content).splitlines()[-1])

    assert last_row(client)["prompt"] == ""
    assert last_row(admin_client)["prompt"] == vote.battle.prompt.text != ""


def test_the_replay_matches_after_a_model_left_the_arena(voted: Arena, tmp_path: Path) -> None:
    _trusted(voted)
    gone = voted.generative_models.order_by("-pk")[0]
    voted.generative_models.remove(gone)
    ratings_replay(arena_id=voted.pk)
    _export(voted, tmp_path / "out")

    result = replay_export(tmp_path / "out")

    assert gone.slug not in {s.player for s in result.standings["elo"]}
    assert result.mismatches == [] and result.matches


def test_public_downloads_are_rate_limited_per_network(
    voted: Arena, client: Any, settings: Any
) -> None:
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMIT_DOWNLOADS = {"prefix": (2, 3600)}
    Arena.objects.filter(pk=voted.pk).update(publish_votes=True)

    answers = [_download(client, voted) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) > 0
    assert "vote downloads" in answers[2].content.decode()


def test_the_export_holds_every_drained_vote_whatever_the_ratings_watermark_says(
    voted: Arena, tmp_path: Path
) -> None:
    ArenaTally.objects.filter(arena=voted).update(applied_through=0)  # e.g. loaded in bulk

    _export(voted, tmp_path / "out")

    assert len(_jsonl(tmp_path / "out" / "votes.jsonl")) == 12
    assert replay_export(tmp_path / "out").matches
