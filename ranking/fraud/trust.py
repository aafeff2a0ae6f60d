"""Earned trust: how much a voter's votes weigh in the leaderboard (the influence bound).

Detection catches what it can see; trust bounds what it cannot.  An identity that has
voted in one sitting, however many of them there are, has shown nothing but that it
exists: each of its votes weighs ``trust_floor`` (0.1).  Trust grows with history that
costs an attacker time, not identities: votes (up to ``trust_full_votes``) *and* their
spread in time (nothing within ``trust_return_s`` of the first vote, full trust after
``trust_full_s``)::

    trust = floor + (1 - floor) * min(1, n / full_votes) * clip((span - return) / (full - return), 0, 1)

So a hundred fresh identities casting ten votes each in one sitting move the leaderboard
as much as one hundred votes would; an honest newcomer's votes count in full once the
person comes back.  Trust is retroactive (a returning voter's earlier votes count in full
too) and a deterministic function of the voter's own votes: replaying the log gives the
same weights.  The account's creation time (``first_seen_s``) is ignored on purpose:
creating identities early costs nothing, returning to vote does.

Trust is the same for every vote of a voter, so leaderboards weight a voter's votes by
one number, stored with the voter's verdict (``weights`` in :class:`ReplayResult`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from .config import DEFAULT_CONFIG, FraudConfig
from .evidence import VoteEvidence

#: Trust is rounded to this step, so that it only changes by whole steps (stored and
#: compared exactly, and a voter's weight does not drift with every vote).
TRUST_STEP = 0.05


def trust_of(n_votes: int, span_s: float, config: FraudConfig = DEFAULT_CONFIG) -> float:
    """The trust earned by ``n_votes`` votes spread over ``span_s`` seconds (first to last)."""
    floor = config.trust_floor
    history = min(1.0, n_votes / config.trust_full_votes)
    ramp = config.trust_full_s - config.trust_return_s
    spread = min(1.0, max(0.0, (span_s - config.trust_return_s) / ramp))
    raw = floor + (1.0 - floor) * history * spread
    # Whole steps down from the exact value, never below the floor.
    return max(floor, min(1.0, int(raw / TRUST_STEP + 1e-9) * TRUST_STEP))


def voter_trust(
    votes: Iterable[VoteEvidence], config: FraudConfig = DEFAULT_CONFIG
) -> dict[str, float]:
    """Each voter's trust earned by its votes among ``votes``."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    count: dict[str, int] = defaultdict(int)
    for v in votes:
        t = v.time_s
        first[v.voter] = min(first.get(v.voter, t), t)
        last[v.voter] = max(last.get(v.voter, t), t)
        count[v.voter] += 1
    return {
        voter: trust_of(n, last[voter] - first[voter], config) for voter, n in sorted(count.items())
    }


def vote_weights(votes: Iterable[VoteEvidence], trust: Mapping[str, float]) -> dict[str, float]:
    """Per vote id the weight below 1 its voter's trust gives it (full-weight votes omitted)."""
    return {v.vote_id: trust[v.voter] for v in votes if trust.get(v.voter, 1.0) < 1.0}
