from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from arena.errors import ArenaError
from arena.models import (
    Arena,
    Asset,
    AssetStatus,
    AuditEntry,
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
from arena.services import asset_regenerate, assets_enqueue, assets_retry
from workers.backends import BackendConfigError, backend_config_check, backend_names
from workers.media import MEDIA_TYPE
from workers.normalise import Profile


class GenerativeModelForm(forms.ModelForm[GenerativeModel]):
    """Checks the backend and its config when the model is saved, not when a job fails."""

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
                backend_config_check(backend, config or {}, list(formats))
            except BackendConfigError as exc:
                field = "backend_config" if backend in backend_names() else "backend"
                self.add_error(field, str(exc))
        return data


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin[GenerativeModel]):
    form = GenerativeModelForm
    list_display = ("name", "organisation", "task", "backend", "queue", "is_active", "added_at")
    list_filter = ("task", "backend", "queue", "is_active")
    search_fields = ("name", "organisation")
    prepopulated_fields = {"slug": ("name",)}
    actions = ("disable_models", "enable_models")

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
