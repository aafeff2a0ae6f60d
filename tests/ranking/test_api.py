"""The shared API: factories, Standing rows, argument errors, no Django, the benchmark CLI."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

import ranking
from benchmarks.simulate import main as simulate_main
from ranking import Ranking, Standing, make_matchmaker, make_rater

METHODS = ["elo", "bradley_terry", "bayesian"]


@pytest.mark.parametrize("method", METHODS)
def test_it_builds_every_method_and_returns_best_first_standings(method: str) -> None:
    rater = make_rater(method, ["a", "b", "c"])
    assert isinstance(rater, ranking.Rater) and rater.method == method
    for _ in range(5):
        rater.record([["a"], ["b"], ["c"]])
        rater.record(Ranking.best_of("a", ["b", "c"]))
    rater.record(Ranking.tie(["b", "c"]))
    rows = rater.standings()
    assert [s.player for s in rows] == ["a", "b", "c"]
    assert rows[0].rank == 1 and rows[0].votes == 10 and rows[0].wins == 20
    assert rows[0].win_rate == 1.0
    assert all(s.low <= s.score <= s.high for s in rows)
    with pytest.raises(FrozenInstanceError):
        rows[0].score = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("method", METHODS)
def test_it_adds_players_later(method: str) -> None:
    rater = make_rater(method, ["a", "b"])
    rater.record([["a"], ["b"]])
    rater.add_player("c")
    rater.record([["c"], ["a"]])
    assert {s.player for s in rater.standings()} == {"a", "b", "c"}
    with pytest.raises(ValueError, match="player: 'c' is already present"):
        rater.add_player("c")


def test_it_exposes_the_documented_standing_fields() -> None:
    names = {f.name for f in fields(Standing)}
    assert {"player", "score", "rank", "low", "high", "votes"} <= names
    assert {"mu", "sigma", "provisional", "wins", "win_rate", "conservative"} <= names


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("glicko", {}, "method: unknown method 'glicko'"),
        ("elo", {"k_factor": 0}, "k_factor: must be a finite number > 0"),
        ("elo", {"k_factor": float("nan")}, "k_factor"),
        ("elo", {"base": 1.0}, "base: must be > 1"),
        ("elo", {"colour": 1}, "params:"),
        ("bradley_terry", {"l2": -1}, "l2: must be a finite number > 0"),
        ("bradley_terry", {"rounds": 1}, "rounds: must be an int >= 2"),
        ("bradley_terry", {"level": 1.5}, "level: must be strictly between 0 and 1"),
        ("bradley_terry", {"resample": "jackknife"}, "resample: must be one of"),
        ("bradley_terry", {"seed": "x"}, "seed: must be an int"),
        ("bayesian", {"sigma": 0}, "sigma: must be a finite number > 0"),
        ("bayesian", {"display": "fancy"}, "display: must be 'map'"),
        ("bayesian", {"refit_every": 0}, "refit_every: must be an int >= 1"),
        ("bayesian", {"lapse": 0.5}, "lapse: must be in"),
        ("bayesian", {"provisional_sigma": -3}, "provisional_sigma"),
    ],
)
def test_it_rejects_bad_rater_arguments(
    method: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_rater(method, ["a", "b"], **params)


@pytest.mark.parametrize("method", METHODS)
def test_it_rejects_bad_votes_and_players(method: str) -> None:
    rater = make_rater(method, ["a", "b"])
    with pytest.raises(ValueError, match="ranking: unknown player 'x'"):
        rater.record([["a"], ["x"]])
    with pytest.raises(ValueError, match="ranking: player 'a' appears twice"):
        rater.record([["a"], ["b", "a"]])
    with pytest.raises(ValueError, match="ranking: group 1 is empty"):
        rater.record([["a"], [], ["b"]])
    with pytest.raises(ValueError, match="players: must be a sequence"):
        make_rater(method, "ab")
    with pytest.raises(ValueError, match="player: 'a' is already present"):
        make_rater(method, ["a", "a"])
    assert all(s.votes == 0 for s in rater.standings())  # nothing half-recorded


def test_it_rejects_bad_matchmaker_factory_arguments() -> None:
    rater = make_rater("elo", ["a", "b"])
    with pytest.raises(ValueError, match="strategy: unknown strategy 'best'"):
        make_matchmaker("best", rater)
    with pytest.raises(ValueError, match="rater: must be a ranking Rater"):
        make_matchmaker("random", object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed: must be an int or None"):
        make_matchmaker("random", rater, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="explore: must be in"):
        make_matchmaker("default", rater, explore=1.0)
    with pytest.raises(ValueError, match="c: must be a finite number > 0"):
        make_matchmaker("ucb", rater, c=0)
    with pytest.raises(ValueError, match="params:"):
        make_matchmaker("random", rater, explore=0.1)


def test_it_never_imports_django() -> None:
    """Every module of ranking imports without Django or the dev-only benchmark packages."""
    code = (
        "import importlib, pkgutil, sys, ranking\n"
        "names = [m.name for m in pkgutil.walk_packages(ranking.__path__, 'ranking.')]\n"
        "assert 'ranking.fraud.pipeline' in names, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'trueskill', 'tqdm')]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_it_runs_the_benchmark_cli_on_a_tiny_world(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        simulate_main(
            [
                "--quick",
                "--seeds",
                "1",
                "--models",
                "6",
                "--schemes",
                "ours,ksort",
                "--settings",
                "noisy",
                "--placement-schemes",
                "ours",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| ours | 4 |" in out and "| ksort | 4 |" in out and "placement" in out
