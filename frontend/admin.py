from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from arena.errors import ArenaError
from arena.models import (
    Arena,
    Asset,
    AssetStatus,
    AuditEntry,
    BackendCheckStatus,
    Battle,
    BattleSlot,
    GenerativeModel,
    Prompt,
    PromptSet,
    Vote,
    VoteExclusion,
    Voter,
    VoterFlag,
)
from arena.services import (
    asset_regenerate,
    assets_enqueue,
    assets_retry,
    model_checks_request,
)
from workers.backends import BackendConfigError, backend_config_check, backend_names
from workers.media import MEDIA_TYPE
from workers.normalise import Profile


class GenerativeModelForm(forms.ModelForm[GenerativeModel]):
    """Checks the backend and its config when the model is saved, not when a job fails.

    The config's shape only (keys, types, values, formats): the web host may have no torch, GPU
    or weights, which a worker of the model's queue checks ("Check now")."""

    link = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = GenerativeModel
        fields = (
            "name", "slug", "organisation", "link", "license", "description", "task", "output_formats",
            "backend", "backend_config", "queue", "max_in_flight", "daily_budget", "is_active",
        )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        backend, config = data.get("backend"), data.get("backend_config")
        formats = data.get("output_formats") or []
        if backend:
            try:
                backend_config_check(backend, config or {}, list(formats), environment=False)
            except BackendConfigError as exc:
                field = "backend_config" if backend in backend_names() else "backend"
                self.add_error(field, str(exc))
        return data


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else ""


def backend_check_summary(model: GenerativeModel) -> str:
    """The last backend check of ``model`` in one line, for the admin."""
    status = model.check_status
    if status == BackendCheckStatus.PENDING:
        return (
            f"pending: sent to queue {model.queue} at {_when(model.check_requested_at)}, "
            "waiting for one of its workers"
        )
    if status not in (BackendCheckStatus.OK, BackendCheckStatus.FAILED):
        return "not checked yet"
    worker = f"worker {model.check_worker}" if model.check_worker else "no worker"
    stale = " (the model has changed since: check again)" if model.check_is_stale else ""
    return f"{status} on {worker} at {_when(model.checked_at)}{stale}: {model.check_message}"


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin[GenerativeModel]):
    form = GenerativeModelForm
    change_form_template = "admin/arena/generativemodel/change_form.html"
    list_display = (
        "name", "organisation", "task", "backend", "queue", "is_active", "backend_check", "added_at",
    )  # fmt: skip
    list_filter = ("task", "backend", "queue", "is_active", "check_status")
    search_fields = ("name", "organisation")
    prepopulated_fields = {"slug": ("name",)}
    actions = ("disable_models", "enable_models", "check_backends")

    def get_readonly_fields(
        self, request: HttpRequest, obj: GenerativeModel | None = None
    ) -> tuple[str, ...]:
        # A model being added has no check yet: the line appears once it exists.
        return ("last_backend_check",) if obj is not None else ()

    @admin.display(description="Backend check", ordering="check_status")
    def backend_check(self, obj: GenerativeModel) -> str:
        """The list's column: the status, the whole summary on hover."""
        label = obj.get_check_status_display().lower() if obj.check_status else "not checked yet"
        if obj.check_is_stale:
            label += " (changed since)"
        return format_html('<span title="{}">{}</span>', backend_check_summary(obj), label)

    @admin.display(description="Last backend check")
    def last_backend_check(self, obj: GenerativeModel) -> str:
        return backend_check_summary(obj)

    @admin.action(
        description="Check now: check the selected models' backends on their workers",
        permissions=("change",),
    )
    def check_backends(self, request: HttpRequest, queryset: QuerySet[GenerativeModel]) -> None:
        self._check(request, list(queryset.order_by("pk")))

    def _check(self, request: HttpRequest, models: list[GenerativeModel]) -> None:
        queues = model_checks_request(models=models)
        self.message_user(
            request,
            f"{len(queues)} backend check(s) sent to the workers of "
            f"{', '.join(sorted(set(queues)))}; the result shows here once one answers "
            "(reload the page).",
            messages.SUCCESS,
        )

    def get_urls(self) -> list[URLPattern]:
        check = path(
            "<path:object_id>/check/",
            self.admin_site.admin_view(self.check_view),
            name="arena_generativemodel_check",
        )
        return [check, *super().get_urls()]

    def check_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change page's "Check now" button (POST only: it sends a task)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        model = self.get_object(request, object_id)
        if model is None:
            raise Http404("No such model.")
        if not self.has_change_permission(request, model):
            raise PermissionDenied
        self._check(request, [model])
        return redirect("admin:arena_generativemodel_change", model.pk)

    @admin.action(description="Disable the selected models (no new battles or generations)")
    def disable_models(self, request: HttpRequest, queryset: QuerySet[GenerativeModel]) -> None:
        count = queryset.update(is_active=False)
        self.message_user(request, f"{count} model(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable the selected models")
    def enable_models(self, request: HttpRequest, queryset: QuerySet[GenerativeModel]) -> None:
        count = queryset.update(is_active=True)
        self.message_user(request, f"{count} model(s) enabled.", messages.SUCCESS)


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin[PromptSet]):
    list_display = ("name", "slug", "created_at")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin[Prompt]):
    list_display = ("text", "prompt_set", "category", "moderation_state")
    list_filter = ("prompt_set", "moderation_state", "category")
    search_fields = ("text",)


def mixed_representations(models: list[GenerativeModel]) -> str:
    """Why these models cannot share an arena ("" when they can): an arena shows one
    representation, since a slot that is a splat among meshes halves the candidates for its
    model, and voters ask not to compare unlike outputs."""
    by_kind: dict[str, list[str]] = {}
    for model in models:
        kind = MEDIA_TYPE.get(model.primary_format, model.primary_format)
        by_kind.setdefault(kind, []).append(model.name)
    if len(by_kind) < 2:
        return ""
    groups = "; ".join(
        f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(by_kind.items())
    )
    return (
        "An arena shows one representation, and these models make different kinds of output "
        f"({groups}). Put each kind in its own arena."
    )


class ArenaForm(forms.ModelForm[Arena]):
    """Checks the media profile and that the models make one kind of output."""

    class Meta:
        model = Arena
        fields = (
            "name", "slug", "description", "task", "prompt_set", "generative_models", "k_values",
            "vote_modes", "default_mode", "outputs_per_prompt", "allow_user_prompts",
            "media_profile", "publish_votes", "is_active", "position",
        )  # fmt: skip

    def clean_media_profile(self) -> dict[str, Any]:
        profile = self.cleaned_data.get("media_profile") or {}
        if not isinstance(profile, dict):
            raise forms.ValidationError("The media profile must be a JSON object.")
        try:
            Profile.from_config(profile)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return profile

    def clean_generative_models(self) -> Any:
        models = self.cleaned_data.get("generative_models")
        if models is not None and (problem := mixed_representations(list(models))):
            raise forms.ValidationError(problem)
        return models


@admin.register(Arena)
class ArenaAdmin(admin.ModelAdmin[Arena]):
    form = ArenaForm
    list_display = (
        "name",
        "slug",
        "task",
        "default_mode",
        "publish_votes",
        "is_active",
        "position",
    )
    actions = ("download_votes",)

    @admin.action(description="Download the votes of the selected arena (JSON Lines)")
    def download_votes(
        self, request: HttpRequest, queryset: QuerySet[Arena]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one arena to download.", messages.ERROR)
            return None
        return redirect("frontend:votes-download", slug=queryset.get().slug)

    filter_horizontal = ("generative_models",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin[Asset]):
    list_display = (
        "public_id", "model", "prompt", "seed", "fmt", "status", "attempts", "size_bytes", "generation_ms",
    )  # fmt: skip
    list_filter = ("status", "media_type", "model")
    search_fields = ("public_id", "checksum", "error")
    readonly_fields = (
        "public_id",
        "checksum",
        "created_at",
        "updated_at",
        "started_at",
        "enqueued_at",
        "worker",
    )
    actions = ("retry_failed", "regenerate")

    @admin.action(description="Retry the selected failed generations")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        queued = assets_retry(asset_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{queued} generation(s) sent again.", messages.SUCCESS)

    @admin.action(description="Regenerate the selected outputs (new file, new random name)")
    def regenerate(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        done, busy = [], 0
        for asset in queryset.select_related("model").exclude(status=AssetStatus.RUNNING):
            try:
                done.append(asset_regenerate(asset=asset))
            except ArenaError:
                busy += 1
        busy += queryset.filter(status=AssetStatus.RUNNING).count()
        queued = assets_enqueue(assets=done)
        note = f" ({busy} running now were left alone)" if busy else ""
        self.message_user(
            request, f"{queued} output(s) queued for regeneration{note}.", messages.SUCCESS
        )


class BattleSlotInline(admin.TabularInline[BattleSlot, Battle]):
    model = BattleSlot
    extra = 0
    readonly_fields = ("position", "asset", "model")
    can_delete = False


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin[Battle]):
    list_display = ("public_id", "arena", "mode", "k", "state", "served_at", "voted_at")
    list_filter = ("arena", "mode", "state")
    readonly_fields = ("public_id", "nonce", "created_at")
    inlines = (BattleSlotInline,)


@admin.register(Voter)
class VoterAdmin(admin.ModelAdmin[Voter]):
    list_display = (
        "public_id",
        "user",
        "battles_served",
        "votes_cast",
        "fast_votes",
        "rejected_votes",
        "last_seen_at",
    )
    readonly_fields = ("public_id", "created_at", "last_seen_at")


class _ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Rows written only by services (votes, fraud scans and reviews): browse, never edit here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Vote)
class VoteAdmin(_ReadOnlyAdmin):
    """Read-only: the vote log is append-only and only ``vote_record`` writes it."""

    list_display = (
        "battle",
        "arena",
        "mode",
        "outcome",
        "slot_ranking",
        "time_to_vote_ms",
        "too_fast",
        "is_named",
        "created_at",
    )
    list_filter = ("arena", "mode", "outcome", "too_fast", "is_named")


@admin.register(VoterFlag)
class VoterFlagAdmin(_ReadOnlyAdmin):
    """Review happens on the vote-integrity pages (/admin/fraud/), which apply it to the votes."""

    list_display = ("voter", "arena", "verdict", "review", "n_votes", "scanned_at")
    list_filter = ("arena", "verdict", "review")


@admin.register(AuditEntry)
class AuditEntryAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "arena", "voter", "action", "actor", "votes_excluded")
    list_filter = ("arena", "action")


@admin.register(VoteExclusion)
class VoteExclusionAdmin(_ReadOnlyAdmin):
    list_display = ("vote", "reason", "created_at")
