from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from arena.models import (
    Arena,
    Asset,
    Battle,
    BattleSlot,
    GenerativeModel,
    Prompt,
    PromptSet,
    Vote,
    Voter,
)


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin[GenerativeModel]):
    list_display = ("name", "organisation", "task", "backend", "queue", "is_active", "added_at")
    list_filter = ("task", "backend", "queue", "is_active")
    search_fields = ("name", "organisation")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin[PromptSet]):
    list_display = ("name", "slug", "created_at")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin[Prompt]):
    list_display = ("text", "prompt_set", "category", "moderation_state")
    list_filter = ("prompt_set", "moderation_state", "category")
    search_fields = ("text",)


@admin.register(Arena)
class ArenaAdmin(admin.ModelAdmin[Arena]):
    list_display = ("name", "slug", "task", "default_mode", "is_active", "position")
    filter_horizontal = ("generative_models",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin[Asset]):
    list_display = (
        "public_id",
        "model",
        "prompt",
        "seed",
        "fmt",
        "status",
        "size_bytes",
        "generation_ms",
    )
    list_filter = ("status", "media_type", "model")
    search_fields = ("public_id", "checksum")
    readonly_fields = ("public_id", "checksum", "created_at", "updated_at")


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


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin[Vote]):
    """Read-only: the vote log is append-only and only ``vote_record`` writes it."""

    list_display = (
        "battle",
        "arena",
        "mode",
        "outcome",
        "slot_ranking",
        "time_to_vote_ms",
        "created_at",
    )
    list_filter = ("arena", "mode", "outcome")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
