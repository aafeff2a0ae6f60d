"""Every threshold of the scan: :class:`FraudConfig`, with its unit and the reason for its default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..base import check_positive
from .checks import _check_finite, _check_int, _check_open_unit
from .evidence import DETECTORS


@dataclass(frozen=True)
class FraudConfig:
    """Every threshold of :func:`scan`, with its unit and the reason for its default.

    Defaults were tuned on the simulated arena of ``python -m benchmarks.fraud_sim``
    (benchmarks/fraud_notes.md) to exclude >= 95% of bot votes while wrongly
    excluding well under 1% of honest voters.  Bad values raise ``ValueError``
    naming the field.
    """

    #: Detectors to run; the others report "ok" with ``evidence["enabled"] = False``.
    detectors: tuple[str, ...] = DETECTORS

    # -- shared ------------------------------------------------------------------------------
    #: Bonferroni-adjusted p-value at which a binomial-type test is "suspicious".  An arena
    #: scans thousands of voters: 1e-3 keeps chance suspicions to ~1 per 1000 honest voters.
    suspicious_p: float = 1e-3
    #: Adjusted p-value for "strong" (exclusion on one test); effect-size gates come on top.
    strong_p: float = 1e-6
    #: Suspicious detectors from this many different FAMILIES exclude the voter.
    combine_families: int = 2
    #: Decided votes (or appearances of one model) before any choice statistic may flag a voter:
    #: two or three votes are anecdotes, whatever their p-value.
    min_votes: int = 5

    # -- crowd_disagreement ------------------------------------------------------------------
    #: Betting fraction lambda: each vote multiplies the e-process by 1 - lambda + lambda * e.
    #: 1 is growth-optimal against a random clicker but lets one honest upset (e ~ 10) weigh
    #: ten-fold; 0.75 keeps ~90% of that growth (0.5: ~75%) and caps an upset at 7.75.
    bet: float = 0.75
    #: e-process level for "suspicious": 1/alpha = 20, the Chatbot Arena threshold.
    disagreement_suspicious_e: float = 20.0
    #: e-process level for "strong": alpha = 1e-3 per voter by Ville's inequality.
    disagreement_strong_e: float = 300.0
    #: Decided votes before the disagreement test may exclude.
    disagreement_min_votes: int = 20

    #: Share of votes an honest person may cast at random (lapses, misclicks, no opinion): the
    #: e-values are taken against the crowd *with* this much noise, ``1 / (N ((1 - l) p + l / N))``,
    #: which has mean <= 1 for any voter lapsing up to ``l``.  A noisy honest voter's e-process
    #: then stays a supermartingale however many votes they cast; a random clicker's still grows.
    disagreement_lapse: float = 0.3
    #: A suspicious (not strong) ``crowd_disagreement`` finding caps the voter's trust at the
    #: floor while it stands, without excluding anyone: evidence of 20 to 1 against choosing
    #: like even a careless crowd-follower bounds a near-random clicker's say long before it
    #: has voted enough to be excluded (in attack_sim's pairwise arena it capped 2 of 9 random
    #: clickers and 1 of 72 heavy noisy honest voters). False turns the cap off.
    disagreement_caps: bool = True
    #: With ``disagreement_caps``, a voter whose decided votes (at least ``min_votes``) are this
    #: many times likelier under coin flips than under that careless crowd is held at the trust
    #: floor too, until later votes bring the odds back under. The odds are the plain
    #: likelihood ratio of all its votes (``prod e``), not the betting e-process: they weigh,
    #: they never exclude. In attack_sim's pairwise arenas the crowd's favourite wins only
    #: ~62% of battles, so a random clicker's hundred votes rarely reach the e-process's 20,
    #: yet 11 of 12 sat above 3; an honest voter lapsing 30-45% of the time carries little
    #: signal either and sits above 3 now and then (its weight, not its standing, drops).
    #: ``math.inf`` turns this part off.
    disagreement_cap_odds: float = 3.0

    # -- crowd_echo --------------------------------------------------------------------------
    #: Sharpness tested against: the voter chooses with the crowd's odds raised to this power
    #: (``echo`` module).  Honest voters in attack_sim sit at 0.7-1.1 (median per subgroup; the
    #: sharpest heavy voters near 1.6 over 100+ votes); copying the board reads 3-6.
    echo_sharpness: float = 1.5
    #: Score-test z (sharper than ``echo_sharpness``) for a finding: one-sided 1.3e-3 at the
    #: boundary, and honest voters sit well inside it (max 2.3 over 6,000 simulated).
    echo_z: float = 3.0
    #: Decided votes before a finding is strong (caps the voter's trust); fewer: suspicious.
    echo_min_votes: int = 30

    # -- position_bias -----------------------------------------------------------------------
    #: Decided votes before the position test may exclude.
    position_min_votes: int = 10
    #: Share of wins in the favoured slot above its expected share, for "suspicious".
    position_suspicious_excess: float = 0.15
    #: Excess share for "strong"; pairwise: 0.5 + 0.3 = 80% in one slot.  Honest people show
    #: 55-60% slot A; over hundreds of votes that is "significant" but never this large.
    position_strong_excess: float = 0.3

    # -- speed -------------------------------------------------------------------------------
    #: Share of an honest voter's votes faster than ``min_view_ms`` (skims, double clicks,
    #: "both bad" at a glance); the binomial test's null.
    honest_fast_rate: float = 0.05
    #: Fast votes needed for "suspicious" (with p <= suspicious_p).
    speed_suspicious_min_fast: int = 3
    #: ... and the share of the voter's votes they must be: significance alone flags a
    #: naturally quick person (attack_sim's honest voters with a strong taste and 14-28% fast
    #: votes were excluded for speed plus their favourite); a careless clicker votes on most
    #: battles before it could have looked at them.
    speed_suspicious_share: float = 0.5

    # -- rate --------------------------------------------------------------------------------
    #: Sliding window for the per-voter burst count, seconds.
    rate_window_s: float = 600.0
    #: Sliding window for the per-voter daily count, seconds.
    rate_day_s: float = 86_400.0
    #: Sliding window for per-prefix votes and new identities, seconds.
    prefix_window_s: float = 3600.0
    #: Quantile of the arena's per-voter / per-prefix maxima taken as "normal" traffic.
    baseline_quantile: float = 0.99
    #: A count is unusual above ``rate_multiplier`` x the baseline quantile (never below the
    #: floors): by construction 1% of honest voters sit above the 99th percentile itself.
    rate_multiplier: float = 2.0
    #: Floor of the per-voter window limit, votes per ``rate_window_s`` (one per 10 s).
    voter_window_floor: int = 60
    #: Floor of the per-voter daily limit, votes per ``rate_day_s``.
    voter_day_floor: int = 1000
    #: Floor of the per-prefix limit, votes per ``prefix_window_s`` (a busy campus NAT).
    prefix_votes_floor: int = 400
    #: Floor of the per-prefix limit on identities created per ``prefix_window_s``.
    prefix_new_floor: int = 10
    #: Consecutive votes that must be too fast to view for the pace to be "impossible"
    #: (strong): a person cannot look at N battles in less than N-1 viewing times.
    impossible_min_votes: int = 10

    # -- model_targeting ---------------------------------------------------------------------
    #: Appearances of the targeted model before the targeting test may exclude.
    targeting_min_appearances: int = 8
    #: Effect size for "suspicious": the personal taste shift (logits, see ``taste_shift``) that
    #: would explain the wins, ``P(chosen) = sigmoid(logit p + shift)``.  It reads the same for
    #: pairwise and best-of-K votes, unlike a difference of win rates.  1 logit ~ 174 Elo.
    targeting_suspicious_shift: float = 1.0
    #: Shift for "strong": near all-or-nothing (95% at even odds, 87% where the crowd predicts
    #: 25%).  Honest people with a favourite a good 2 logits above the crowd's (benchmarks/
    #: attack_sim.py's strong_taste voters; 1.75 excluded 13% of them in best-of-4 arenas) stay
    #: below it through their lapses; a promoter or demoter who always / never picks the model
    #: has an infinite shift.
    targeting_strong_shift: float = 3.0
    #: Adjusted p-value for a strong targeting verdict: the shift gate carries the weight (in
    #: the simulation 0 of 9000 honest voters pass both at 1e-3, 2 at 3e-3, 6 at 1e-2).
    targeting_strong_p: float = 1e-3
    #: A strong targeting finding with no other evidence keeps out only the voter's votes where
    #: the model was shown (``VoterReport.kept_out``), not the voter: choices alone cannot tell
    #: a genuine fan from a promoter, and either way those votes are its whole influence on the
    #: model. While the finding stands its other votes weigh the trust floor (an identity with an
    #: agenda has not earned a full say). With other evidence (another family suspicious) the
    #: voter is excluded.
    targeting_scoped: bool = True
    #: Rank rigging (Min et al., ICML 2025, "omnipresent" rigging): a target pushed up while
    #: the models ranked just above it are pushed down, so its rank rises through battles it
    #: is not in. The test joins the target's near all-or-nothing choices with those about up
    #: to this many models next to it on the side it is pushed towards (0 turns it off).
    rigging_window: int = 3

    # -- coordination ------------------------------------------------------------------------
    #: A group's time-sorted votes split into sessions where the gap exceeds this, seconds.
    group_gap_s: float = 1800.0
    #: Distinct voters in a session before it is tested as a group.
    group_min_voters: int = 3

    # -- campaign ----------------------------------------------------------------------------
    #: Combined (exposure, choice) p-value at which an identity is a campaign candidate for a
    #: model; under the null at most this share of identities is a candidate by chance.
    campaign_member_p: float = 1e-4
    #: Once a campaign on a model is established by the candidates above, identities pushing
    #: the same model with a combined p-value up to this join it (about this share of the
    #: honest identities that pushed the model at all is caught with them).
    campaign_join_p: float = 2e-3
    #: A candidate needs unusual exposure to the model (this tail) ...
    campaign_exposure_p: float = 0.01
    #: ... or near all-or-nothing choices (taste shift in logits; 3 ~ 95% at even odds).
    campaign_choice_shift: float = 3.0
    #: Adjusted binomial tail of the number of candidates for one model for a campaign.
    campaign_p: float = 1e-6
    #: Candidates needed for a campaign (one or two identities are judged by the others).
    campaign_min_members: int = 3
    #: Identities with at least this many recent votes are "established": the exposure rates
    #: and the consensus that campaigns are judged against come from them (when they cast at
    #: least 30% of the recent votes), so fresh identities cannot skew either.
    campaign_established_votes: int = 10
    #: Votes looked at for campaigns: the last ``campaign_window_s`` seconds (two weeks; one
    #: week caught half as many omnipresent riggers in attack_sim's pairwise arenas and no more
    #: honest voters at two; the app reads at most its newest 200,000 votes).
    campaign_window_s: float = 14 * 86_400.0
    #: Earned trust (``trust`` module): the weight of a vote from an identity that has voted in
    #: one sitting; 1 turns the influence bound off.
    trust_floor: float = 0.1
    #: Votes an identity needs for full trust (with the spread below).
    trust_full_votes: int = 10
    #: History shorter than this (first vote to last) earns nothing: one sitting.
    trust_return_s: float = 6 * 3600.0
    #: History this long (and ``trust_full_votes`` votes) earns full trust.
    trust_full_s: float = 2 * 86_400.0

    def __post_init__(self) -> None:
        for name in ("targeting_scoped", "disagreement_caps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be True or False, got {getattr(self, name)!r}")
        self._check_detectors()
        self._check_p_values()
        self._check_disagreement()
        self._check_counts()
        self._check_scales()

    def _check_detectors(self) -> None:
        det = self.detectors
        if isinstance(det, str) or not isinstance(det, Sequence):
            raise ValueError(f"detectors: must be a sequence of detector names, got {det!r}")
        for d in det:
            if d not in DETECTORS:
                raise ValueError(f"detectors: unknown detector {d!r}; use some of {DETECTORS}")
        object.__setattr__(self, "detectors", tuple(det))

    def _check_p_values(self) -> None:
        for name in (
            "suspicious_p",
            "strong_p",
            "targeting_strong_p",
            "baseline_quantile",
            "campaign_member_p",
            "campaign_join_p",
            "campaign_exposure_p",
            "campaign_p",
        ):
            _check_open_unit(name, getattr(self, name))
        if self.strong_p > self.suspicious_p:
            raise ValueError(
                f"strong_p: must be <= suspicious_p ({self.suspicious_p}), got {self.strong_p}"
            )

    def _check_disagreement(self) -> None:
        """The verdict counts and the e-process bet and thresholds."""
        _check_int("combine_families", self.combine_families, 1)
        _check_int("min_votes", self.min_votes, 1)
        _check_open_unit("bet", self.bet, allow_one=True)
        lapse = _check_finite("disagreement_lapse", self.disagreement_lapse)
        if not 0.0 <= lapse < 1.0:
            raise ValueError(f"disagreement_lapse: must be in [0, 1), got {lapse!r}")
        odds = self.disagreement_cap_odds
        if isinstance(odds, bool) or not isinstance(odds, int | float) or not odds > 1:
            raise ValueError(f"disagreement_cap_odds: must be a number > 1, got {odds!r}")
        if _check_finite("disagreement_suspicious_e", self.disagreement_suspicious_e) <= 1:
            raise ValueError(
                f"disagreement_suspicious_e: must be > 1, got {self.disagreement_suspicious_e!r}"
            )
        if _check_finite("disagreement_strong_e", self.disagreement_strong_e) < (
            self.disagreement_suspicious_e
        ):
            raise ValueError(
                "disagreement_strong_e: must be >= disagreement_suspicious_e, "
                f"got {self.disagreement_strong_e!r}"
            )

    def _check_counts(self) -> None:
        for name in (
            "disagreement_min_votes",
            "echo_min_votes",
            "position_min_votes",
            "speed_suspicious_min_fast",
            "voter_window_floor",
            "voter_day_floor",
            "prefix_votes_floor",
            "prefix_new_floor",
            "targeting_min_appearances",
            "campaign_min_members",
            "campaign_established_votes",
            "trust_full_votes",
        ):
            _check_int(name, getattr(self, name), 1)
        _check_int("impossible_min_votes", self.impossible_min_votes, 2)
        if _check_int("rigging_window", self.rigging_window, 0) > 6:
            raise ValueError(f"rigging_window: must be at most 6, got {self.rigging_window!r}")
        _check_int("group_min_voters", self.group_min_voters, 2)

    def _check_scales(self) -> None:
        """Shares, taste shifts, windows and the rate multiplier."""
        for name in (
            "position_suspicious_excess",
            "position_strong_excess",
            "honest_fast_rate",
            "speed_suspicious_share",
            "trust_floor",
        ):
            _check_open_unit(name, getattr(self, name), allow_one=True)
        for name in (
            "targeting_suspicious_shift",
            "targeting_strong_shift",
            "campaign_choice_shift",
            "echo_z",
        ):
            check_positive(name, getattr(self, name))
        if not _check_finite("echo_sharpness", self.echo_sharpness) > 1:
            raise ValueError(f"echo_sharpness: must be > 1, got {self.echo_sharpness!r}")
        for name in (
            "rate_window_s",
            "rate_day_s",
            "prefix_window_s",
            "group_gap_s",
            "campaign_window_s",
        ):
            check_positive(name, getattr(self, name))
        if not _check_finite("trust_return_s", self.trust_return_s) >= 0:
            raise ValueError(f"trust_return_s: must be >= 0, got {self.trust_return_s!r}")
        if not _check_finite("trust_full_s", self.trust_full_s) > self.trust_return_s:
            raise ValueError(
                f"trust_full_s: must be > trust_return_s ({self.trust_return_s}), "
                f"got {self.trust_full_s!r}"
            )
        if _check_finite("rate_multiplier", self.rate_multiplier) < 1:
            raise ValueError(f"rate_multiplier: must be >= 1, got {self.rate_multiplier!r}")


DEFAULT_CONFIG = FraudConfig()


def _check_config(config: object) -> FraudConfig:
    if not isinstance(config, FraudConfig):
        raise ValueError(f"config: must be a FraudConfig, got {type(config).__name__}")
    return config
