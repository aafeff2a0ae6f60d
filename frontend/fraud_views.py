"""Fraud review inside the Django admin: per-arena integrity, the review queue, voter evidence."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from arena import fraud
from arena.leaderboards import voter_weights
from arena.models import Arena, AuditEntry, GenerativeModel, Review, Vote, VoterFlag
from workers.tasks import scan_fraud

VOTES_SHOWN = 200


def _arena(slug: str) -> Arena:
    return get_object_or_404(Arena, slug=slug)


@staff_member_required
def fraud_overview(request: HttpRequest) -> HttpResponse:
    arenas = list(Arena.objects.order_by("position", "name"))
    rows = [(a, fraud.arena_integrity(arena=a)) for a in arenas]
    context = {**admin.site.each_context(request), "title": "Vote integrity", "rows": rows}
    return render(request, "admin/fraud_overview.html", context)


@staff_member_required
def fraud_arena(request: HttpRequest, slug: str) -> HttpResponse:
    arena = _arena(slug)
    queue = fraud.review_queue(arena=arena)
    page = Paginator(queue, 50).get_page(request.GET.get("page"))
    flags = list(page.object_list)
    fired = fraud.voters_flag_summary(flags=flags)
    context = {
        **admin.site.each_context(request),
        "title": f"Vote integrity · {arena.name}",
        "arena": arena,
        "integrity": fraud.arena_integrity(arena=arena),
        "page": page,
        "flags": [(f, fired[f.pk]) for f in flags],
        "impact": fraud.fraud_impact(arena=arena),
        "campaigns": fraud.arena_campaigns(arena=arena),
        "audit": AuditEntry.objects.filter(arena=arena)
        .select_related("voter", "actor")
        .order_by("-created_at", "-pk")[:30],
    }
    return render(request, "admin/fraud_arena.html", context)


@staff_member_required
@require_POST
def fraud_scan_now(request: HttpRequest, slug: str) -> HttpResponse:
    arena = _arena(slug)
    if request.POST.get("full") == "1":
        # A full rescan reads the whole vote log (about 30 s per 100k votes): a worker runs it.
        scan_fraud.apply_async(kwargs={"full": True, "arena": arena.slug})
        messages.success(request, "A rescan of every voter was queued; reload in a while.")
        return redirect("admin-fraud-arena", slug=arena.slug)
    result = fraud.fraud_scan(arena=arena)
    messages.success(
        request,
        f"Scanned {result.voters_scanned} voter(s) in {result.duration_ms} ms: "
        f"{result.votes_excluded} vote(s) excluded, {result.votes_restored} restored.",
    )
    return redirect("admin-fraud-arena", slug=arena.slug)


def _flag(slug: str, voter_id: str) -> VoterFlag:
    try:
        public_id = uuid.UUID(voter_id)
    except ValueError:
        raise Http404("No such voter.") from None
    return get_object_or_404(
        VoterFlag.objects.select_related("arena", "voter", "reviewed_by"),
        arena__slug=slug,
        voter__public_id=public_id,
    )


def _targeted_model(flag: VoterFlag) -> str | None:
    """The name of the model the voter's votes are kept out for: its campaign's, when the
    voter is a returning member of one (scoped), else its targeting finding's, if any."""

    def about(r: dict[str, Any]) -> bool:
        if r.get("detector") == "campaign":
            return bool(r.get("evidence", {}).get("scoped"))
        return r.get("detector") == "model_targeting"

    for r in sorted(filter(about, flag.results), key=lambda r: r["detector"] != "campaign"):
        model_id = str(r.get("evidence", {}).get("model", ""))
        if model_id.isdigit():
            return (
                GenerativeModel.objects.filter(pk=model_id).values_list("name", flat=True).first()
            )
    return None


@staff_member_required
def fraud_voter(request: HttpRequest, slug: str, voter_id: str) -> HttpResponse:
    flag = _flag(slug, voter_id)
    if request.method == "POST":
        if not request.user.has_perm("arena.change_voterflag"):
            messages.error(
                request, "Only reviewers with the “change voter flag” permission may decide."
            )
            return redirect("admin-fraud-voter", slug=slug, voter_id=voter_id)
        action = request.POST.get("action", "")
        try:
            fraud.voter_review(
                flag=flag, action=action, actor=request.user, note=request.POST.get("note", "")
            )
        except fraud.ReviewError as exc:
            messages.error(request, str(exc))
        else:
            verb = "confirmed as fraud" if action == "confirm" else "cleared"
            messages.success(request, f"{flag.voter} {verb}.")
        return redirect("admin-fraud-voter", slug=slug, voter_id=voter_id)
    votes = (
        Vote.objects.filter(arena=flag.arena, voter=flag.voter)
        .select_related("exclusion")
        .order_by("-pk")[:VOTES_SHOWN]
    )
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": f"{flag.voter} in {flag.arena.name}",
        "flag": flag,
        "arena": flag.arena,
        "results": flag.results,
        "votes": votes,
        "votes_total": Vote.objects.filter(arena=flag.arena, voter=flag.voter).count(),
        "series": fraud.voter_choice_series(flag=flag),
        "audit": AuditEntry.objects.filter(arena=flag.arena, voter=flag.voter)
        .select_related("actor")
        .order_by("-created_at", "-pk"),
        "reviewed": flag.review != Review.UNREVIEWED,
        "trust": voter_weights(arena_id=flag.arena_id, voter_ids=[flag.voter_id])[flag.voter_id],
        "kept_out": Vote.objects.filter(
            arena=flag.arena, voter=flag.voter, exclusion__reason=fraud.TARGETING_REASON
        ).count(),
        "targeted_model": _targeted_model(flag),
        "capped_by": fraud.caps_trust(flag),
        # The thresholds the scan judged by, as its evidence recorded them.
        "disagreement": next(
            (
                r.get("evidence", {})
                for r in flag.results
                if r.get("detector") == "crowd_disagreement"
            ),
            {},
        ),
    }
    return render(request, "admin/fraud_voter.html", context)
