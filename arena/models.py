"""The arena's domain model.

Writes go through ``arena.services``; reads through ``arena.selectors``. Models carry single-row
behaviour only. Votes are append-only: the vote log is the source of truth for every leaderboard.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction

SLOT_LABELS = "ABCDEF"
MIN_K = 2
MAX_K = 4


def _random_hex() -> str:
    return secrets.token_hex(16)


class Task(models.TextChoices):
    TEXT_TO_IMAGE = "text-to-image", "Text to image"
    TEXT_TO_VIDEO = "text-to-video", "Text to video"
    IMAGE_TO_3D = "image-to-3d", "Image to 3D"
    TEXT_TO_3D = "text-to-3d", "Text to 3D"


class MediaType(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    MESH = "mesh", "3D mesh (.glb)"
    SPLAT = "splat", "Gaussian splat (.ply)"


# Which file formats each media type accepts, and which media types each task produces.
FORMATS_BY_MEDIA_TYPE: dict[str, tuple[str, ...]] = {
    MediaType.IMAGE: ("png", "webp", "jpeg"),
    MediaType.VIDEO: ("mp4", "webm"),
    MediaType.MESH: ("glb",),
    MediaType.SPLAT: ("ply",),
}
MEDIA_TYPE_BY_FORMAT: dict[str, str] = {
    fmt: media for media, formats in FORMATS_BY_MEDIA_TYPE.items() for fmt in formats
}
MEDIA_TYPES_BY_TASK: dict[str, tuple[str, ...]] = {
    Task.TEXT_TO_IMAGE: (MediaType.IMAGE,),
    Task.TEXT_TO_VIDEO: (MediaType.VIDEO,),
    Task.IMAGE_TO_3D: (MediaType.MESH, MediaType.SPLAT),
    Task.TEXT_TO_3D: (MediaType.MESH, MediaType.SPLAT),
}


class VoteMode(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise (A / B / tie / both bad)"
    BEST_OF_K = "best_of_k", "Pick the best of K"
    RANK_K = "rank_k", "Rank all K"


class BackendCheckStatus(models.TextChoices):
    """The last "Check now" of a model's backend, run by a worker of the model's own queue."""

    NOT_CHECKED = "", "Not checked yet"
    PENDING = "pending", "Pending"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class GenerativeModel(models.Model):
    """A model that competes in arenas. Its name is never shown before a vote."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    organisation = models.CharField(max_length=120, blank=True)
    link = models.URLField(blank=True)
    license = models.CharField(max_length=80, blank=True)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=20, choices=Task.choices)
    output_formats = models.JSONField(
        default=list, help_text='File formats it produces, e.g. ["png"].'
    )
    backend = models.CharField(max_length=40, default="builtin")
    backend_config = models.JSONField(default=dict, blank=True)
    queue = models.CharField(
        max_length=80, default="gen.cpu", help_text="Celery queue its jobs go to."
    )
    max_in_flight = models.PositiveIntegerField(
        default=8,
        help_text="At most this many of its outputs pending or running at once (0: no limit).",
    )
    daily_budget = models.PositiveIntegerField(
        default=0, help_text="At most this many generations started per day (0: no limit)."
    )
    matchmaking_weight = models.FloatField(
        default=1.0,
        help_text="How often the matchmaker shows it relative to others (0: never; 2: twice as often).",
    )
    is_active = models.BooleanField(default=True)
    added_at = models.DateTimeField(auto_now_add=True)
    # The last backend check: the web host checks a config's shape only (it may lack torch or the
    # weights); a worker of ``queue`` checks the rest and reports here (``model_check_record``).
    check_status = models.CharField(
        max_length=10, choices=BackendCheckStatus.choices, default="", blank=True, editable=False
    )
    check_message = models.TextField(blank=True, editable=False)
    check_worker = models.CharField(max_length=200, blank=True, editable=False)
    check_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # backend_fingerprint() of what the last check saw: a later edit makes its verdict stale.
    check_fingerprint = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        allowed = {
            fmt for media in MEDIA_TYPES_BY_TASK[self.task] for fmt in FORMATS_BY_MEDIA_TYPE[media]
        }
        formats = self.output_formats
        if not isinstance(formats, list) or not formats:
            raise ValidationError({"output_formats": "Give at least one output format."})
        bad = [fmt for fmt in formats if fmt not in allowed]
        if bad:
            raise ValidationError(
                {
                    "output_formats": f"{', '.join(map(str, bad))} not allowed for {self.task}; use {sorted(allowed)}"
                }
            )

    @property
    def primary_format(self) -> str:
        return str(self.output_formats[0])

    def backend_fingerprint(self) -> str:
        """A hash of what a backend check depends on: backend, its config, formats and queue."""
        given = [self.backend, self.backend_config, self.output_formats, self.queue]
        text = json.dumps(given, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def check_is_stale(self) -> bool:
        """True when the model changed since its last finished check."""
        return bool(self.checked_at) and self.check_fingerprint != self.backend_fingerprint()


class PromptSet(models.Model):
    """A named collection of prompts (a source set); an arena draws its battles from one."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ModerationState(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    conditioning_image = models.FileField(upload_to="conditioning/", blank=True)
    category = models.CharField(max_length=60, blank=True)
    tags = models.JSONField(default=list, blank=True)
    moderation_state = models.CharField(
        max_length=10, choices=ModerationState.choices, default=ModerationState.APPROVED
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["prompt_set", "text"], name="prompt_unique_text_per_set"
            )
        ]
        ordering: ClassVar[list[str]] = ["id"]

    def __str__(self) -> str:
        return self.text[:60]


class Arena(models.Model):
    """One leaderboard scope: a task, the allowed battle sizes and vote modes, a prompt set."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=20, choices=Task.choices)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="arenas")
    generative_models = models.ManyToManyField(GenerativeModel, related_name="arenas", blank=True)
    k_values = models.JSONField(
        default=list, help_text="Battle sizes for K-wise modes, e.g. [3, 4]."
    )
    vote_modes = models.JSONField(
        default=list, help_text='e.g. ["pairwise", "best_of_k", "rank_k"]'
    )
    default_mode = models.CharField(
        max_length=12, choices=VoteMode.choices, default=VoteMode.PAIRWISE
    )
    outputs_per_prompt = models.PositiveSmallIntegerField(
        default=1, help_text="Ready outputs (seeds) the cache keeps per model and prompt."
    )
    allow_user_prompts = models.BooleanField(
        default=False,
        help_text="Voters may type their own prompt; the K models then generate live.",
    )
    media_profile = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "How this arena's outputs are normalised on ingest (one format, frame size, "
            "duration, splat count): keys of workers.normalise.Profile, e.g. "
            '{"image_side": 1024}; empty for the defaults.'
        ),
    )
    publish_votes = models.BooleanField(
        default=False,
        help_text="Anyone may download the arena's votes (pseudonymised) from its leaderboard.",
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the home page.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new arena gets its tally row at once: a first vote and a concurrent leaderboard read
        would otherwise both insert it, and on PostgreSQL one of them deadlocked."""
        adding = self._state.adding
        with transaction.atomic():
            super().save(*args, **kwargs)
            if adding:
                ArenaTally.objects.get_or_create(arena=self)

    def clean(self) -> None:
        modes = self.vote_modes
        if not isinstance(modes, list) or not modes or any(m not in VoteMode.values for m in modes):
            raise ValidationError({"vote_modes": f"Choose one or more of {VoteMode.values}."})
        ks = self.k_values
        if not isinstance(ks, list) or any(
            not isinstance(k, int) or not MIN_K < k <= MAX_K for k in ks
        ):
            raise ValidationError(
                {"k_values": f"K-wise sizes must be integers in {MIN_K + 1}..{MAX_K}."}
            )
        if (VoteMode.BEST_OF_K in modes or VoteMode.RANK_K in modes) and not ks:
            raise ValidationError({"k_values": "K-wise modes need at least one K value."})
        if self.default_mode not in modes:
            raise ValidationError(
                {"default_mode": "The default mode must be one of the allowed modes."}
            )

    @property
    def media_types(self) -> tuple[str, ...]:
        return MEDIA_TYPES_BY_TASK[self.task]

    def k_for_mode(self, mode: str, requested: int | None = None) -> int:
        """Battle size for ``mode``: 2 for pairwise, else ``requested`` if allowed or the largest K."""
        if mode == VoteMode.PAIRWISE:
            return 2
        if requested is not None and requested in self.k_values:
            return requested
        return max(self.k_values)


class AssetStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def asset_upload_to(instance: Asset, filename: str) -> str:
    # The stored name is random: nothing in the path or URL may reveal the model before a vote.
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"assets/{instance.public_id}.{extension}"


def asset_original_upload_to(instance: Asset, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"originals/{instance.public_id}.{extension}"


class Asset(models.Model):
    """One generated output of (model, prompt, seed)."""

    public_id = models.CharField(max_length=32, unique=True, default=_random_hex, editable=False)
    model = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="assets")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="assets")
    seed = models.IntegerField(default=0)
    file = models.FileField(
        upload_to=asset_upload_to, blank=True, help_text="What battles serve: normalised."
    )
    original = models.FileField(
        upload_to=asset_original_upload_to,
        blank=True,
        help_text="The model's own file (metadata stripped), shown after the vote.",
    )
    original_fmt = models.CharField(max_length=10, blank=True)
    media_type = models.CharField(max_length=10, choices=MediaType.choices)
    fmt = models.CharField("format", max_length=10)
    size_bytes = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    generation_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=AssetStatus.choices, default=AssetStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its job was last sent."
    )
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker last claimed it."
    )
    worker = models.CharField(
        max_length=200, blank=True, help_text="The worker that last claimed it."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When its running job last said it is alive."
    )
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the stored file.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["model", "prompt", "seed"], name="asset_unique_model_prompt_seed"
            )
        ]
        indexes: ClassVar[list[Any]] = [models.Index(fields=["prompt", "status", "model"])]

    def __str__(self) -> str:
        return f"asset {self.public_id} ({self.status})"


class Voter(models.Model):
    """An anonymous voting identity (a signed cookie), optionally tied to a logged-in user.

    The counters are maintained by the services and read by fraud detection.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="voters",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    battles_served = models.PositiveIntegerField(default=0)
    votes_cast = models.PositiveIntegerField(default=0)
    fast_votes = models.PositiveIntegerField(
        default=0, help_text="Votes cast sooner than a careful look allows."
    )
    ties_cast = models.PositiveIntegerField(default=0)
    rejected_votes = models.PositiveIntegerField(
        default=0, help_text="Invalid or replayed vote attempts."
    )
    # Keyed HMACs (see arena.privacy): groupable for fraud detection, never reversible.
    prefix_hash = models.CharField(
        max_length=64, blank=True, help_text="HMAC of the client's network prefix (/24 or /48)."
    )
    user_agent_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"voter {str(self.public_id)[:8]}"


class BattleState(models.TextChoices):
    GENERATING = "generating", "Generating (a voter's own prompt)"
    SERVED = "served", "Served"
    VOTED = "voted", "Voted"


class Battle(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="battles")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="battles")
    mode = models.CharField(max_length=12, choices=VoteMode.choices)
    k = models.PositiveSmallIntegerField()
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="battles")
    # Random per battle; the signed token carries it and a vote must present it. Single use
    # because the Vote row is one-to-one with the battle.
    nonce = models.CharField(max_length=32, default=_random_hex, editable=False)
    state = models.CharField(max_length=12, choices=BattleState.choices, default=BattleState.SERVED)
    # The voter chose the models: the vote is kept but never counts on the anonymous leaderboard.
    is_named = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    served_at = models.DateTimeField()
    voted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["arena", "state"]),
            # The activity rollup reads the battles served in its window (arena.activity).
            models.Index(fields=["served_at"], name="battle_served_at_idx"),
            # Every battle reads the outputs its voter has seen revealed in the arena, newest
            # battles first (selectors.voter_revealed_assets): without this it scanned all of
            # the arena's voted battles, a cost growing with the arena, not with the voter.
            models.Index(
                fields=["voter", "arena", "-id"],
                condition=models.Q(state="voted"),
                name="battle_voter_revealed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"battle {str(self.public_id)[:8]} in {self.arena_id}"


class BattleSlot(models.Model):
    """One anonymous position (A, B, ...) of a battle and the asset shown there."""

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField()
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="battle_slots")
    model = models.ForeignKey(
        GenerativeModel, on_delete=models.PROTECT, related_name="battle_slots"
    )

    class Meta:
        ordering: ClassVar[list[str]] = ["position"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["battle", "position"], name="slot_unique_position"),
            models.UniqueConstraint(fields=["battle", "model"], name="slot_unique_model"),
        ]

    def __str__(self) -> str:
        return f"slot {self.label} of {self.battle_id}"

    @property
    def label(self) -> str:
        return SLOT_LABELS[self.position]


class VoteOutcome(models.TextChoices):
    WIN = "win", "A winner was picked"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    RANKED = "ranked", "Full ranking"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """For logs (votes, the audit log): rows are added, never updated or deleted."""

    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only: they cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only: they cannot be deleted")


class Vote(models.Model):
    """One vote on one battle. Append-only: the vote log is the source of truth.

    ``ranking`` holds GenerativeModel ids as ordered groups, best first; players in one group are
    tied. When ``is_partial`` is true (best-of-K) the LAST group is unordered, not tied: the
    winner beat each of them but they were not compared with each other.
    ``slot_ranking`` is the same ranking in slot labels, as the voter saw it.
    """

    battle = models.OneToOneField(Battle, on_delete=models.PROTECT, related_name="vote")
    arena = models.ForeignKey(Arena, on_delete=models.PROTECT, related_name="votes")
    voter = models.ForeignKey(Voter, on_delete=models.PROTECT, related_name="votes")
    mode = models.CharField(max_length=12, choices=VoteMode.choices)
    outcome = models.CharField(max_length=10, choices=VoteOutcome.choices)
    ranking = models.JSONField()
    slot_ranking = models.JSONField()
    is_partial = models.BooleanField(default=False)
    time_to_vote_ms = models.PositiveIntegerField()
    min_view_ms = models.PositiveIntegerField(
        default=0, help_text="The least time a careful look at these outputs takes."
    )
    too_fast = models.BooleanField(
        default=False, help_text="Cast sooner than min_view_ms after the battle was served."
    )
    is_named = models.BooleanField(
        default=False, help_text="On a battle whose models the voter chose: never counted."
    )
    client_hash = models.CharField(
        max_length=64, help_text="HMAC of the client address; never the raw IP."
    )
    prefix_hash = models.CharField(
        max_length=64, blank=True, help_text="HMAC of the client's network prefix."
    )
    user_agent_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes: ClassVar[list[Any]] = [models.Index(fields=["arena", "created_at"])]

    def __str__(self) -> str:
        return f"vote on {self.battle_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("votes are append-only: they cannot be changed once recorded")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("votes are append-only: they cannot be deleted")


# --- leaderboards -----------------------------------------------------------------------------


class VoteExclusion(models.Model):
    """A vote that fraud detection (or an admin) took out of the leaderboards.

    The vote itself stays in the append-only log; leaderboards skip excluded votes. Clearing
    the voter deletes the exclusion (the audit log keeps the decision) and counts the vote again.
    """

    vote = models.OneToOneField(Vote, on_delete=models.PROTECT, related_name="exclusion")
    reason = models.CharField(max_length=200)
    reasons = models.JSONField(
        default=list, blank=True, help_text="The detectors (or 'admin') behind the exclusion."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"exclusion of vote {self.vote_id}: {self.reason}"


class ArenaTally(models.Model):
    """Running totals of an arena's counted votes (kept up to date by the aggregator).

    ``digest`` identifies the set of counted votes: the sum, modulo 2**128, of a hash of each
    counted vote id. Adding or excluding a vote updates it in O(1), so a leaderboard rebuild can
    stamp the exact vote set it used without reading the vote log.
    """

    arena = models.OneToOneField(Arena, on_delete=models.CASCADE, related_name="tally")
    votes = models.PositiveIntegerField(default=0)
    digest = models.CharField(max_length=32, default="0" * 32)
    applied_through = models.BigIntegerField(
        default=0, help_text="The highest vote id the aggregator has applied."
    )
    replicates = models.PositiveSmallIntegerField(
        default=0,
        help_text="How many vote-level bootstrap replicates the pair tallies keep up to date "
        "(0: not built yet; the next leaderboard rebuild builds them from the vote log).",
    )
    ratings_stale = models.BooleanField(
        default=False,
        help_text="The online ratings differ from a replay in vote order (a vote applied out of "
        "order, or votes excluded or restored) until the next ratings replay.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"tally of {self.arena_id}: {self.votes} votes"


class PendingVote(models.Model):
    """A recorded vote the aggregator has not applied to its arena's tallies yet.

    The vote's transaction inserts this row (nothing arena-wide is locked); the aggregator
    (``leaderboards.tallies_drain``) applies pending votes in id order under the arena's tally
    lock and deletes their rows in the same transaction.
    """

    vote = models.OneToOneField(
        Vote, on_delete=models.CASCADE, primary_key=True, related_name="pending"
    )
    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"pending vote {self.vote_id} in {self.arena_id}"


class PairTally(models.Model):
    """Aggregated outcomes of one unordered model pair in one arena (``model_a.pk < model_b.pk``).

    The sufficient statistics of Bradley-Terry and the Bayesian refit: rebuilds read these
    rows, never the per-vote log, so their cost does not grow with the number of votes.
    Wins and ties are weighted (each vote at its voter's earned trust, ``VoterTrust``);
    ``comparisons`` counts the comparisons themselves, whatever their weight.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="pair_tallies")
    model_a = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="+")
    model_b = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="+")
    a_wins = models.FloatField(default=0)
    b_wins = models.FloatField(default=0)
    ties = models.FloatField(default=0)
    comparisons = models.IntegerField(default=0)
    # The vote-level bootstrap: R replicates of (a_wins, b_wins, ties), float64 (R, 3), where
    # each vote counts Poisson(1) times, drawn from its id (ranking.counts.vote_weights). The
    # intervals resample votes, not pairs: the pairs of one K-wise vote were judged together.
    replicates = models.BinaryField(default=b"", editable=False)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["arena", "model_a", "model_b"], name="pair_tally_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_a_id} vs {self.model_b_id} in {self.arena_id}"


class ModelRating(models.Model):
    """Online ratings of a model in an arena, updated as votes arrive (ELO and Bayesian)."""

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="ratings")
    model = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="ratings")
    votes = models.PositiveIntegerField(default=0)
    elo = models.FloatField(default=1000.0)
    mu = models.FloatField(default=25.0)
    sigma = models.FloatField(default=25.0 / 3.0)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["arena", "model"], name="model_rating_unique")
        ]

    def __str__(self) -> str:
        return f"rating of {self.model_id} in {self.arena_id}"


class LeaderboardSnapshot(models.Model):
    """One rebuilt leaderboard: a pure function of (counted votes, method, params, code version)."""

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="snapshots")
    method = models.CharField(max_length=20)
    params = models.JSONField(default=dict)
    code_version = models.CharField(max_length=40)
    vote_set_hash = models.CharField(max_length=32)
    votes = models.PositiveIntegerField()
    standings = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["arena", "method", "code_version", "vote_set_hash"], name="snapshot_unique"
            )
        ]
        indexes: ClassVar[list[Any]] = [models.Index(fields=["arena", "method", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.method} leaderboard of {self.arena_id} at {self.vote_set_hash[:8]}"


# --- fraud detection --------------------------------------------------------------------------


class Verdict(models.TextChoices):
    OK = "ok", "OK"
    SUSPICIOUS = "suspicious", "Suspicious"
    EXCLUDED = "excluded", "Excluded"


class Review(models.TextChoices):
    UNREVIEWED = "unreviewed", "Not reviewed"
    CONFIRMED = "confirmed", "Confirmed fraud"
    CLEARED = "cleared", "Cleared"


class VoterTrust(models.Model):
    """The weight one voter's counted votes carry in one arena's leaderboards: earned trust
    (``ranking.fraud.trust_of``), set by the fraud scan from the voter's history.

    Every tallied vote of the voter is in the arena's pair tallies, ratings and digest at
    this weight; a voter's first drained vote creates the row at the trust floor, and the
    scan moves all the voter's tallied votes when it changes.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="+")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="trust")
    weight = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["arena", "voter"], name="voter_trust_unique")
        ]

    def __str__(self) -> str:
        return f"{self.voter_id} in {self.arena_id}: weight {self.weight}"


class VoterFlag(models.Model):
    """Fraud detection's latest judgement of one voter in one arena, and its human review.

    ``results`` holds every detector's score, summary and evidence (``ranking.fraud``). A
    reviewer's decision is sticky: ``confirmed`` keeps the votes out whatever later scans say;
    ``cleared`` counts them again, and later scans judge only votes after
    ``cleared_through_vote_id`` so the same evidence never excludes the voter twice.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="voter_flags")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="flags")
    verdict = models.CharField(max_length=12, choices=Verdict.choices, default=Verdict.OK)
    reasons = models.JSONField(default=list, blank=True)
    results = models.JSONField(default=list, blank=True)
    n_votes = models.PositiveIntegerField(default=0)
    review = models.CharField(max_length=12, choices=Review.choices, default=Review.UNREVIEWED)
    cleared_through_vote_id = models.BigIntegerField(default=0)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    scanned_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["arena", "voter"], name="voter_flag_unique")
        ]
        indexes: ClassVar[list[Any]] = [models.Index(fields=["arena", "verdict", "review"])]

    def __str__(self) -> str:
        return f"{self.voter} in {self.arena_id}: {self.verdict}"

    @property
    def is_excluding(self) -> bool:
        """Whether this voter's votes are kept out of the leaderboards."""
        if self.review == Review.CONFIRMED:
            return True
        return self.review != Review.CLEARED and self.verdict == Verdict.EXCLUDED


class FraudScanState(models.Model):
    """Where the incremental fraud scan of an arena stands."""

    arena = models.OneToOneField(Arena, on_delete=models.CASCADE, related_name="fraud_scan")
    last_vote_id = models.BigIntegerField(default=0)
    scanned_at = models.DateTimeField(null=True, blank=True)
    voters_scanned = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    #: When the arena's recent votes were last searched for campaigns (hourly, see arena.fraud).
    campaigns_scanned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"fraud scan of {self.arena_id} through vote {self.last_vote_id}"


class Campaign(models.Model):
    """A campaign found by the scan: identities pushing one model, with the evidence.

    ``finding`` is ``ranking.fraud.CampaignFinding.to_dict()`` (members are voter ids as
    str, the model an id as str); one row per arena, model and direction, updated as the
    campaign grows.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="campaigns")
    key = models.CharField(max_length=80)
    model = models.ForeignKey(
        GenerativeModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    direction = models.CharField(max_length=10)
    members = models.PositiveIntegerField(default=0)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    finding = models.JSONField(default=dict)
    found_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["arena", "key"], name="campaign_unique")
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.model_id} in {self.arena_id} ({self.members} identities)"


class AuditAction(models.TextChoices):
    AUTO_EXCLUDED = "auto_excluded", "Excluded by detection"
    AUTO_SUSPECTED = "auto_suspected", "Flagged suspicious by detection"
    AUTO_CLEARED = "auto_cleared", "No longer flagged by detection"
    CONFIRMED = "confirmed", "Confirmed by a reviewer"
    CLEARED = "cleared", "Cleared by a reviewer"


class AuditEntry(models.Model):
    """One decision about a voter, by detection (``actor`` empty) or by a reviewer. Append-only."""

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="audit_entries")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="audit_entries")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    reasons = models.JSONField(default=list, blank=True)
    votes_excluded = models.IntegerField(default=0)
    votes_restored = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.action} {self.voter} by {self.actor or 'detection'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("the audit log is append-only")
        super().save(*args, **kwargs)


# --- operators' dashboard ---------------------------------------------------------------------


class ArenaActivity(models.Model):
    """One hour of one arena's traffic, rolled up from the vote log and the battles
    (``arena.activity.activity_rollup``) so the admin overview never reads the log itself.

    Every figure is about what happened in the hour: ``votes`` cast then, of which
    ``votes_excluded`` are kept out of the leaderboards now; ``battles_served`` then, of which
    ``battles_voted`` got their vote (later or not); ``voters``: distinct voters of the hour.
    Recent hours are recomputed while exclusions and late votes still move them.
    """

    arena = models.ForeignKey(Arena, on_delete=models.CASCADE, related_name="activity")
    hour = models.DateTimeField(help_text="The hour's start, UTC.")
    votes = models.PositiveIntegerField(default=0)
    votes_excluded = models.PositiveIntegerField(default=0)
    battles_served = models.PositiveIntegerField(default=0)
    battles_voted = models.PositiveIntegerField(default=0)
    voters = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "arena activity"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["arena", "hour"], name="arena_activity_unique_hour")
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["hour"], name="arena_activity_hour_idx")
        ]

    def __str__(self) -> str:
        return f"activity of {self.arena_id} at {self.hour:%Y-%m-%d %H}:00"


class ArenaActivitySummary(models.Model):
    """Where an arena's activity rollup stands, and what hourly rows cannot add up: distinct
    voters over the last 24 hours (a voter active in two hours is one voter)."""

    arena = models.OneToOneField(Arena, on_delete=models.CASCADE, related_name="activity_summary")
    voters_24h = models.PositiveIntegerField(default=0)
    rolled_at = models.DateTimeField(help_text="The 'now' of the last rollup.")

    def __str__(self) -> str:
        return f"activity summary of {self.arena_id} at {self.rolled_at}"
