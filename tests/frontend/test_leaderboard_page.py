"""The per-arena leaderboard page through Django's test client: methods, intervals, heatmap."""

from __future__ import annotations

import json
import random
import re
from html import unescape
from typing import Any

import pytest
from django.test import Client

from arena import selectors
from arena.models import Arena, GenerativeModel, LeaderboardSnapshot
from tests.arena.test_leaderboards import _best_name_wins, _cast, _pairwise_first_wins
from tests.factories import VoterFactory, ready_arena

pytestmark = pytest.mark.django_db


def _voted_arena(*, models: int = 4, votes: int = 12, seed: int = 5) -> Arena:
    """An arena where the model with the smallest number in its name always wins."""
    arena = ready_arena(models=models)
    voter, rng = VoterFactory.create(), random.Random(seed)
    for _ in range(votes):
        _cast(arena, voter, "rank_k", rng, _best_name_wins)
    return arena


def _text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _rows(html: str) -> list[dict[str, Any]]:
    """The standings table's rows: slug, rank cell, model cell, score, votes, win rate."""
    rows = []
    for slug, body in re.findall(r'<tr data-model="([^"]+)"[^>]*>(.*?)</tr>', html, re.S):
        cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        rank, model, score, votes, win_rate, *_settle = cells
        rows.append(
            {
                "slug": slug,
                "rank": rank.replace(" ", ""),
                "model": model,
                "score": score,
                "votes": votes,
                "win_rate": win_rate,
            }
        )
    return rows


def _get(client: Client, arena: Arena, query: str = "") -> tuple[int, str]:
    response = client.get(f"/arena/{arena.slug}/leaderboard/{query}")
    return response.status_code, response.content.decode()


@pytest.mark.parametrize("method", ["bayesian", "bradley_terry"])
def test_it_lists_models_in_the_snapshots_order_with_scores_and_intervals(
    client: Client, method: str
) -> None:
    arena = _voted_arena()

    status, html = _get(client, arena, f"?method={method}")

    assert status == 200
    snapshot = selectors.leaderboard_latest(arena=arena, method=method)
    assert snapshot is not None and snapshot.votes == 12
    rows = _rows(html)
    assert [r["slug"] for r in rows] == [s["slug"] for s in snapshot.standings]
    for row, standing in zip(rows, snapshot.standings, strict=True):
        plus = round(standing["high"] - standing["score"])
        minus = round(standing["score"] - standing["low"])
        assert row["score"] == f"{round(standing['score'])} (+{plus}/\N{MINUS SIGN}{minus})"
        assert row["votes"] == str(standing["votes"])
        assert row["win_rate"] == f"{round(100 * standing['win_rate'])}%"
        assert row["rank"].lstrip("=") == str(standing["rank"])
    # The best-named model always won: it is first, with every comparison won.
    best = GenerativeModel.objects.filter(arenas=arena).order_by("pk").first()
    assert best is not None
    assert rows[0]["model"].startswith(best.name)
    assert rows[0]["win_rate"] == "100%"


def test_it_marks_a_shared_rank_with_an_equals_sign(client: Client) -> None:
    arena = _voted_arena(models=4, votes=2)

    _, html = _get(client, arena, "?method=bradley_terry")

    snapshot = selectors.leaderboard_latest(arena=arena, method="bradley_terry")
    assert snapshot is not None
    ranks = [s["rank"] for s in snapshot.standings]
    shared = {r for r in ranks if ranks.count(r) > 1}
    assert shared, "two votes cannot separate four models"
    for row in _rows(html):
        rank = int(row["rank"].lstrip("="))
        assert row["rank"].startswith("=") == (rank in shared)


def test_it_switches_method_with_the_tabs(client: Client) -> None:
    arena = _voted_arena()

    _, default = _get(client, arena)
    _, bt = _get(client, arena, "?method=bradley_terry")

    for method, label in (("bayesian", "Bayesian (K-wise)"), ("bradley_terry", "Bradley-Terry")):
        assert f'href="?method={method}"' in default and f">{label}</a>" in default
    assert re.search(r'class="tab active" href="\?method=bayesian" aria-current="page"', default)
    assert re.search(r'class="tab active" href="\?method=bradley_terry" aria-current="page"', bt)
    assert "Bradley-Terry</strong>: maximum-likelihood" in bt
    # Views never fit: the rebuild they asked for (run at once by the tests' sender) builds
    # every method together.
    assert set(LeaderboardSnapshot.objects.values_list("method", flat=True)) == {
        "bayesian",
        "bradley_terry",
        "elo",
    }
    match = re.search(r'id="leaderboard-data"[^>]*>(.*?)</script>', bt, re.S)
    assert match
    data = json.loads(match[1])
    assert data["method"] == "bradley_terry" and data["intervals"] is True


def test_it_shows_elo_scores_without_intervals(client: Client) -> None:
    arena = _voted_arena()

    status, html = _get(client, arena, "?method=elo")

    assert status == 200
    snapshot = selectors.leaderboard_latest(arena=arena, method="elo")
    assert snapshot is not None
    rows = _rows(html)
    assert [r["slug"] for r in rows] == [s["slug"] for s in snapshot.standings]
    for row, standing in zip(rows, snapshot.standings, strict=True):
        assert row["score"] == str(round(standing["score"]))
    assert "(+" not in html and "95% CI" not in html
    assert "ELO has no confidence interval" in html


def test_it_answers_an_unknown_method_with_a_readable_400(client: Client) -> None:
    arena = _voted_arena(votes=1)

    status, html = _get(client, arena, "?method=glicko<b>")

    assert status == 400
    assert "There is no ranking method called &#x27;glicko&lt;b&gt;&#x27;" in html
    assert "Bayesian (K-wise), Bradley-Terry, ELO" in html
    assert 'href="?method=bradley_terry"' in html, "the tabs still offer the real methods"
    assert "glicko<b>" not in html
    assert not LeaderboardSnapshot.objects.exists()


def test_it_is_a_404_for_an_unknown_arena(client: Client) -> None:
    response = client.get("/arena/nowhere/leaderboard/")

    assert response.status_code == 404
    assert "No active arena" in response.content.decode()


def test_it_shows_a_friendly_empty_state_before_the_first_vote(client: Client) -> None:
    arena = ready_arena(models=3)

    status, html = _get(client, arena)

    assert status == 200
    assert "No votes yet — be the first" in html
    assert f'href="/arena/{arena.slug}/">Vote</a>' in html
    assert _rows(html) == []
    assert "1000" not in _text(html.split("<main", 1)[1])
    assert "chart.umd.min.js" not in html


def test_it_is_never_stale(client: Client) -> None:
    arena = _voted_arena(votes=3)
    _get(client, arena)
    voter, rng = VoterFactory.create(), random.Random(9)
    _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)

    _, html = _get(client, arena)

    assert "<strong>4</strong> votes counted" in html
    snapshot = selectors.leaderboard_latest(arena=arena, method="bayesian")
    assert snapshot is not None and snapshot.votes == 4
    assert f">{snapshot.vote_set_hash[:8]}</code>" in html


def test_it_colours_a_heatmap_cell_with_the_pairs_win_rate(client: Client) -> None:
    arena = ready_arena(models=3)
    voter, rng = VoterFactory.create(), random.Random(1)
    for _ in range(6):
        _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)

    _, html = _get(client, arena)

    matrix = selectors.arena_pair_matrix(arena=arena)
    met = [
        (a, b, matrix.win_rate[i][j], matrix.games[i][j])
        for i, a in enumerate(matrix.models)
        for j, b in enumerate(matrix.models)
        if matrix.games[i][j]
    ]
    assert met
    for a, b, rate, games in met:
        assert rate is not None
        pct = round(100 * rate)
        cell = re.search(
            rf'<td class="hm hm-(\d+)" data-pair="{a.slug}:{b.slug}" ([^>]*)>([^<]*)</td>', html
        )
        assert cell, f"a cell for {a.name} against {b.name}"
        assert cell[3] == f"{pct}%"
        assert int(cell[1]) == round(10 * rate)
        plural = "s" if games != 1 else ""
        assert f'title="{a.name} beat {b.name} in {pct}% of {games} comparison{plural}"' in cell[2]
    # Model 0 always won its pairs: a deep red cell; its victims' cells are deep blue.
    first = matrix.models[0]
    assert re.search(rf'class="hm hm-10" data-pair="{first.slug}:', html)
    assert re.search(rf'class="hm hm-0" data-pair="[^:"]+:{first.slug}"', html)


def test_it_greys_out_a_pair_that_never_met(client: Client) -> None:
    arena = ready_arena(models=3)
    voter, rng = VoterFactory.create(), random.Random(2)
    _cast(arena, voter, "pairwise", rng, _pairwise_first_wins)

    _, html = _get(client, arena)

    assert html.count('class="hm-none"') == 4  # one pair met; two pairs (both ways) did not
    assert html.count('class="hm-self"') == 3
    assert "have not met yet" in html


def test_it_badges_a_model_with_few_votes_as_provisional(client: Client) -> None:
    arena = _voted_arena(models=4, votes=2)

    _, html = _get(client, arena, "?method=bradley_terry")

    snapshot = selectors.leaderboard_latest(arena=arena, method="bradley_terry")
    assert snapshot is not None
    provisional = {s["slug"] for s in snapshot.standings if s["provisional"]}
    assert provisional, "two votes leave the ratings provisional"
    for row in _rows(html):
        assert ("provisional" in row["model"]) == (row["slug"] in provisional)


def test_it_links_a_model_with_a_link_and_shows_its_organisation(client: Client) -> None:
    arena = _voted_arena(votes=2)
    model = GenerativeModel.objects.filter(arenas=arena).order_by("pk").first()
    assert model is not None
    model.link = "https://example.org/model"
    model.organisation = "Acme Research"
    model.save()

    _, html = _get(client, arena)

    assert f'<a href="https://example.org/model" rel="noopener noreferrer">{model.name}</a>' in html
    assert '<span class="lb-org">Acme Research</span>' in html


def test_it_passes_chart_data_as_json_and_loads_only_local_scripts(client: Client) -> None:
    arena = _voted_arena(votes=3)
    _get(client, arena)
    voter, rng = VoterFactory.create(), random.Random(4)
    _cast(arena, voter, "rank_k", rng, _best_name_wins)

    _, html = _get(client, arena)

    match = re.search(
        r'<script id="leaderboard-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match
    data = json.loads(match[1])
    assert [m["slug"] for m in data["models"]] == [r["slug"] for r in _rows(html)]
    assert [h["votes"] for h in data["history"]] == [3, 4]
    assert all(len(h["scores"]) == 4 for h in data["history"])
    scripts = re.findall(r"<script([^>]*)>", html)
    for attrs in scripts:
        src = re.search(r'src="([^"]+)"', attrs)
        assert src is None or src[1].startswith("/static/"), attrs
    assert "/static/arena/leaderboard.js" in html
    # No inline script on this page besides the JSON data and the import map of the base.
    inline = [a for a in scripts if "src=" not in a]
    assert all('type="application/json"' in a or 'type="importmap"' in a for a in inline)


def test_it_reads_a_bounded_number_of_queries(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    small = _voted_arena(models=3, votes=4)
    large = _voted_arena(models=8, votes=16)
    _get(client, small)
    _get(client, large)  # snapshots built; the next views reuse them

    with django_assert_max_num_queries(13) as small_queries:
        _get(client, small)
    with django_assert_max_num_queries(13) as large_queries:
        _get(client, large)

    assert len(large_queries.captured_queries) == len(small_queries.captured_queries)
