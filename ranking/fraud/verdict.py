"""The verdict rules: from a voter's detector results to "ok", "suspicious" or "excluded"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .config import DEFAULT_CONFIG, FraudConfig, _check_config
from .disagreement import caps_by_odds
from .evidence import DetectorResult, Verdict

#: Detectors whose suspicions are (nearly) independent for an honest voter belong to different
#: families; two suspicions from one family (a strong taste shows in both disagreement and
#: targeting) are one piece of evidence, not two.
FAMILIES: Mapping[str, str] = {
    "crowd_disagreement": "choice",
    "crowd_echo": "echo",
    "model_targeting": "choice",
    "position_bias": "position",
    "speed": "pace",
    "rate": "pace",
    "coordination": "group",
    "campaign": "group",
}


def capping(config: FraudConfig = DEFAULT_CONFIG) -> frozenset[str]:
    """Detectors whose strong finding alone caps the voter's trust instead of excluding it:
    what they see (a voter much sharper than the crowd, or a voter with a favourite) an
    honest person can show too, and capping bounds the influence either way."""
    return frozenset({"crowd_echo", *(("model_targeting",) if config.targeting_scoped else ())})


def caps(result: DetectorResult, config: FraudConfig = DEFAULT_CONFIG) -> bool:
    """Whether ``result`` caps the voter's trust: a strong finding of a :func:`capping`
    detector, a campaign membership scoped to its model (a returning identity,
    ``evidence["scoped"]``), or a suspicious ``crowd_disagreement`` (with
    ``config.disagreement_caps``; a strong one excludes), or an "ok" one whose votes are
    ``config.disagreement_cap_odds`` times likelier under coin flips than under the careless
    crowd (:func:`caps_by_odds`)."""
    if result.detector == "crowd_disagreement":
        if result.level == "ok":
            ev = result.evidence
            n, odds = int(ev.get("n_decided", 0)), float(ev.get("log10_odds", 0.0))
            return caps_by_odds(n, odds, config)
        return config.disagreement_caps and result.level == "suspicious"
    return result.level == "strong" and (
        result.detector in capping(config) or bool(result.evidence.get("scoped"))
    )


def _same_model_campaign(r: DetectorResult, targeted: set[object], config: FraudConfig) -> bool:
    """A scoped campaign finding about a model the voter's targeting finding is about too."""
    return r.detector == "campaign" and caps(r, config) and r.evidence.get("model") in targeted


def decide(
    results: Sequence[DetectorResult], *, config: FraudConfig = DEFAULT_CONFIG
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict on a voter from its detector results, and the detectors behind it.

    "excluded" when any detector is strong (reasons: the strong ones) or when
    the suspicious ones come from at least ``config.combine_families`` of
    :data:`FAMILIES` (a rate suspicion that only comes from the voter's network
    prefix does not count); "suspicious" when any is suspicious; else "ok".
    A strong *capping* finding (:func:`caps`: ``crowd_echo``, ``model_targeting`` with
    ``config.targeting_scoped``, and a returning identity's campaign membership) counts as a
    suspicion: alone it caps the voter's trust (and keeps out its votes on the model) instead.
    """
    _check_config(config)
    for r in results:
        if not isinstance(r, DetectorResult) or r.detector not in FAMILIES:
            raise ValueError(f"results: must be DetectorResults of known detectors, got {r!r}")
    strong = tuple(r.detector for r in results if r.level == "strong")
    if any(r.level == "strong" and not caps(r, config) for r in results):
        return "excluded", strong
    # A lone strong capping finding counts as one family of evidence (the caller caps the
    # voter's trust, see ``VoterReport.trust_capped``, and keeps out its votes on a targeted
    # model, ``VoterReport.kept_out``).
    suspicious = tuple(r.detector for r in results if r.level != "ok")
    # A busy network prefix says something about the network, not the person: it never adds a
    # family of evidence against them on its own.
    # A returning identity's campaign membership and its own targeting finding about the same
    # model are one habit seen twice (the campaign test reads the same votes): one family.
    targeted = {
        r.evidence.get("model")
        for r in results
        if r.detector == "model_targeting" and r.level != "ok"
    }
    counted = {
        "choice" if _same_model_campaign(r, targeted, config) else FAMILIES[r.detector]
        for r in results
        if r.level != "ok" and not r.evidence.get("prefix_only")
    }
    if len(counted) >= config.combine_families:
        return "excluded", suspicious
    if suspicious:
        return "suspicious", suspicious
    return "ok", ()
