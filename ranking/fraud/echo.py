"""The ``crowd_echo`` detector: choices sharper than the crowd's own odds (voting from the board).

The disagreement test catches a voter who chooses *against* the crowd. Its mirror
image is an identity that chooses *with* the leaderboard more reliably than anyone
looking at the outputs could: a bot that picks whichever model the public board
ranks higher, and spends its credibility only where it matters (a camouflaged
promoter helping its model in close contests, a demoter of #1, omnipresent rigging
that hurts a target's neighbours). Those identities pass every "agrees with the
crowd" test by construction; what gives them away is that they agree *too much*.

Model: the voter picks slot ``i`` with probability ``q_i`` proportional to
``p_i ** beta``, where ``p`` are the consensus chances.  ``beta = 1`` is a voter who
chooses like the crowd; an honest person with consistent taste is somewhat sharper
than the crowd (the crowd's odds are flattened by people disagreeing), lapses make
them flatter; someone copying the board has ``beta`` of 3-6.  The test is of
``beta <= echo_sharpness`` (1.5 by default: half again as sharp as the crowd), on how often
the voter chose the crowd's favourite:

    z = sum_i (1[chose the favourite] - q_fav,i) / sqrt(sum_i q_fav,i (1 - q_fav,i))

with ``q`` at ``beta = 1.5``: approximately standard normal at the boundary and negative on
average for anyone flatter.  When the targeting test flags one model for the voter, the votes showing
it are left out: a taste for one model is the targeting test's evidence, and counting it
here too would make one habit two families (a fan of the #1 model picks the favourite
whenever it is shown).  Copying the board shows without that model.  (The likelihood score, weighting each vote by the log odds,
is more powerful against a pure copier but lets a handful of deliberate upsets, a
promoter's votes for its weak model, cancel hundreds of copied votes.)  ``z >= echo_z`` over ``echo_min_votes`` decided votes is "strong".

What it does with a finding: nothing more than an influence cap on its own.  An
honest voter can be this consistent, so a strong echo finding alone never excludes
anyone (see :func:`ranking.fraud.verdict.decide`): the voter's trust is held at the
floor while the finding stands (an identity voting from the board adds little
information, whoever it is).  With another family of evidence (targeting one model,
pace, position) the voter is excluded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .config import FraudConfig
from .consensus import _Prep
from .evidence import DetectorResult, Level
from .stats import _r

#: Smallest consensus chance used in the logs (a certain outcome would dominate the sums).
_LOG_FLOOR = 1e-9
#: Log-probabilities this close count as a tie for the favourite.
_TIE = 1e-9


def _terms(decided: Sequence[_Prep], sharpness: float) -> list[tuple[float, float]]:
    """Per vote, (chose a favourite - q_fav, q_fav (1 - q_fav)) at ``beta = sharpness``."""
    out: list[tuple[float, float]] = []
    for p in decided:
        lp = [math.log(max(x, _LOG_FLOOR)) for x in p.probs]
        top = max(lp)
        w = [math.exp(sharpness * (x - top)) for x in lp]
        # The favourites: every slot at the top probability (evenly matched slots are all
        # favourites, so a vote between them says nothing: q = 1, no variance).
        favs = [i for i, x in enumerate(lp) if x >= top - _TIE]
        q = sum(w[i] for i in favs) / sum(w)
        out.append(((1.0 if p.winner in favs else 0.0) - q, q * (1.0 - q)))
    return out


def _z(num: float, var: float) -> float:
    return num / math.sqrt(var) if var > 1e-12 else 0.0


def echo_z(decided: Sequence[_Prep], sharpness: float) -> float:
    """The z of ``beta <= sharpness`` from how often the voter chose the crowd's favourite.

    ``sum(chose favourite - q_fav) / sqrt(sum q_fav (1 - q_fav))``, ``q_fav`` the favourite's
    chance at ``beta = sharpness``.  Each vote moves it by at most one standard deviation's
    worth, so a few deliberate upsets (a promoter's votes for its model) cannot hide a voter
    who copies the board everywhere else, as the log-likelihood score would let them.  0
    without votes.
    """
    terms = _terms(decided, sharpness)
    return _z(sum(t[0] for t in terms), sum(t[1] for t in terms))


def echo_z_without(decided: Sequence[_Prep], sharpness: float, model: str | None) -> float:
    """:func:`echo_z` over the decided votes that do not show ``model`` (None: all of them)."""
    if model is None:
        return echo_z(decided, sharpness)
    return echo_z([p for p in decided if model not in p.vote.slots], sharpness)


def _level(n: int, z: float, config: FraudConfig) -> Level:
    if z < config.echo_z or n < config.min_votes:
        return "ok"
    return "strong" if n >= config.echo_min_votes else "suspicious"


def _crowd_echo(
    decided: Sequence[_Prep], config: FraudConfig, targeted: str | None = None
) -> DetectorResult:
    """The finding; ``targeted`` is the model the targeting test flags for this voter (its
    votes are left out, see the module docstring)."""
    left_out = targeted
    n = len(decided)
    z = echo_z_without(decided, config.echo_sharpness, left_out)
    level = _level(n, z, config)
    fav = sum(1 for p in decided if p.probs[p.winner] >= max(p.probs) - 1e-12)
    expected = sum(max(p.probs) for p in decided)
    if n == 0:
        summary = "no decided votes to compare with the crowd"
    else:
        without = f" without the votes showing {left_out}" if left_out else ""
        summary = (
            f"chose the crowd's favourite in {fav} of {n} decided votes (expected "
            f"{expected:.1f} choosing like the crowd); sharper than {config.echo_sharpness:g}x "
            f"the crowd's odds at z = {z:.2f}{without} (strong at {config.echo_z:g} over "
            f"{config.echo_min_votes} votes)"
        )
    evidence = {
        "n_decided": n,
        "z": _r(z),
        "left_out_model": left_out,
        "chose_favourite": fav,
        "expected_favourite": _r(expected, 2),
        "sharpness": config.echo_sharpness,
        "strong_z": config.echo_z,
        "min_votes": config.echo_min_votes,
    }
    return DetectorResult("crowd_echo", level, _r(z), summary, evidence)
