"""The demo content: four arenas, eight built-in models each, thirty prompts each.

The models are procedural generators in four visibly different quality tiers (see
``workers.generators``), so votes in the demo produce a meaningful leaderboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.text import slugify

from arena.models import Arena, GenerativeModel, Prompt, PromptSet, Task, VoteMode
from workers.generators import render_reference


@dataclass(frozen=True)
class DemoModel:
    name: str
    organisation: str
    quality: int
    style: int
    formats: tuple[str, ...]


IMAGE_PROMPTS = [
    "a lighthouse on a cliff at sunset",
    "a red fox in a snowy forest",
    "a cup of coffee on a wooden table",
    "a futuristic city skyline at night",
    "a bowl of ramen with a soft egg",
    "an astronaut riding a horse",
    "a watercolor painting of a harbor",
    "a cozy cabin by a frozen lake",
    "a vintage bicycle against a brick wall",
    "a field of sunflowers under a blue sky",
    "a koi pond with lily pads",
    "a robot reading a book in a library",
    "a mountain range reflected in a lake",
    "a steaming teapot with blue patterns",
    "a hot air balloon over canyons",
    "a neon sign that says open",
    "a close-up of a hummingbird",
    "a desert with tall cacti at dusk",
    "a stack of pancakes with berries",
    "a sailing ship in a storm",
    "a snowy village with glowing windows",
    "a cat sleeping on a windowsill",
    "a bonsai tree in a ceramic pot",
    "an old map with a compass",
    "a green tea field on terraces",
    "a jellyfish glowing in dark water",
    "a train crossing a stone bridge",
    "a basket of autumn apples",
    "a paper lantern festival",
    "a owl perched on a mossy branch",
]
VIDEO_PROMPTS = [
    "waves rolling onto a sandy beach",
    "a candle flame flickering",
    "clouds drifting over mountains",
    "a spinning globe",
    "rain falling on a window",
    "a bouncing red ball",
    "fireflies in a summer meadow",
    "a windmill turning in the breeze",
    "a paper boat floating down a stream",
    "northern lights over a lake",
    "a hummingbird hovering at a flower",
    "traffic lights changing at night",
    "a leaf falling in autumn",
    "a jellyfish pulsing in the deep",
    "a sunrise over the desert",
    "a flag waving on a pole",
    "snow falling on pine trees",
    "a pendulum swinging",
    "smoke rising from a chimney",
    "a carousel turning",
    "a koi fish swimming in circles",
    "a rocket lifting off",
    "a metronome ticking",
    "a lava lamp bubbling",
    "a butterfly opening its wings",
    "a waterfall in the jungle",
    "a clock's hands moving quickly",
    "a dandelion releasing seeds",
    "a campfire crackling",
    "a kite flying over a hill",
]
# The image-to-3D prompts: the input photo of each is drawn from its text
# (``render_reference``), and the built-in generators draw four kinds of subject (the
# archetypes of ``workers.generators.figure``: creature, tree, mushroom, snowman). A prompt
# that names none of them gets one picked by its hash -- "a potted cactus" showed a snowman --
# so every text here names the subject its photo shows, and its colour words are the photo's
# (a creature's body, a tree's leaves, a mushroom's cap, a snowman's hat and then scarf).
# Subjects take turns, so a demo seeded with a few prompts still shows each kind.
OBJECT_SUBJECTS: list[tuple[str, str]] = [
    ("a toy robot", "creature"),
    ("a bonsai tree", "tree"),
    ("a red mushroom with white spots", "mushroom"),
    ("a snowman with a red hat", "snowman"),
    ("a grey stone statue of a cat", "creature"),
    ("an oak tree", "tree"),
    ("a toadstool", "mushroom"),
    ("a snowman with a blue hat and a yellow scarf", "snowman"),
    ("an orange fox cub", "creature"),
    ("a palm tree", "tree"),
    ("a brown mushroom", "mushroom"),
    ("a frosty snowman with a green hat", "snowman"),
    ("a brown teddy bear", "creature"),
    ("a small pine tree", "tree"),
    ("a blue glowing mushroom", "mushroom"),
    ("a little snowman with a black hat", "snowman"),
    ("a white bunny", "creature"),
    ("a tree with golden autumn leaves", "tree"),
    ("a yellow toadstool", "mushroom"),
    ("a christmas snowman with a red hat and a green scarf", "snowman"),
    ("a green frog", "creature"),
    ("a tree with pink blossoms", "tree"),
    ("an orange mushroom", "mushroom"),
    ("a snowman", "snowman"),
    ("a purple dragon", "creature"),
    ("a tree with purple leaves", "tree"),
    ("a giant pink mushroom", "mushroom"),
    ("a grey owl", "creature"),
    ("a yellow bird", "creature"),
    ("a blue cartoon mascot", "creature"),
]
OBJECT_PROMPTS = [text for text, _ in OBJECT_SUBJECTS]

_ORGS = [
    "Northwind Labs",
    "Pixel Foundry",
    "Open Canvas",
    "Lumen AI",
    "Quill Research",
    "Vertex Studio",
    "Kite Collective",
    "Helio Systems",
]


def _models(prefix: str, names: list[str], formats: list[tuple[str, ...]]) -> list[DemoModel]:
    # Tiers 4,4,3,3,2,2,1,1: neighbours share a tier but differ in style, so the demo's leaderboard
    # has clear gaps between tiers and near-ties inside one.
    tiers = [4, 4, 3, 3, 2, 2, 1, 1]
    return [
        DemoModel(f"{name} {prefix}", _ORGS[i], tiers[i], i, formats[i % len(formats)])
        for i, name in enumerate(names)
    ]


@dataclass(frozen=True)
class DemoArena:
    slug: str
    name: str
    description: str
    task: str
    prompts: list[str]
    models: list[DemoModel]
    k_values: tuple[int, ...] = (4,)
    vote_modes: tuple[str, ...] = (VoteMode.PAIRWISE, VoteMode.BEST_OF_K, VoteMode.RANK_K)
    default_mode: str = VoteMode.PAIRWISE
    allow_user_prompts: bool = True
    # The built-in generators' frame sizes (normalising changes formats, not sizes), and a
    # padding above their largest files, so every served file of an arena has one size.
    media_profile: dict[str, int | float] = field(default_factory=dict)


_NAMES = ["Aurora", "Brushfire", "Cinder", "Dapple", "Etch", "Fresco", "Gouache", "Halftone"]

DEMO_ARENAS = [
    DemoArena(
        slug="text-to-image",
        name="Text to Image",
        description="Which picture matches the prompt best?",
        task=Task.TEXT_TO_IMAGE,
        prompts=IMAGE_PROMPTS,
        models=_models("Image", _NAMES, [("png",), ("webp",)]),
        media_profile={"image_side": 384, "pad_bytes": 256 * 1024},
    ),
    DemoArena(
        slug="text-to-video",
        name="Text to Video",
        description="Short clips, played in sync. Which motion and look is best?",
        task=Task.TEXT_TO_VIDEO,
        prompts=VIDEO_PROMPTS,
        models=_models("Video", _NAMES, [("webm",), ("mp4",)]),
        media_profile={
            "video_width": 256,
            "video_height": 256,
            "video_fps": 12,
            "video_seconds": 2,
            "pad_bytes": 128 * 1024,
        },
    ),
    DemoArena(
        slug="image-to-3d",
        name="Image to 3D",
        description="One input image, turned into a coloured 3D mesh. Rotate one and all follow.",
        task=Task.IMAGE_TO_3D,
        prompts=OBJECT_PROMPTS,
        models=_models("3D", _NAMES, [("glb",)]),
        media_profile={"pad_bytes": 512 * 1024},
    ),
    # Meshes and splats in separate arenas: a slot's representation would otherwise halve the
    # candidates for its model, and voters ask not to compare unlike outputs.
    DemoArena(
        slug="image-to-splat",
        name="Image to Splat",
        description="One input image, turned into a 3D Gaussian splat. Rotate one and all follow.",
        task=Task.IMAGE_TO_3D,
        prompts=OBJECT_PROMPTS,
        models=_models("Splat", _NAMES, [("ply",)]),
        media_profile={"splat_count": 15000},
    ),
]


def demo_seed(*, prompts_per_arena: int = 30) -> dict[str, int]:
    """Create (or top up) the demo arenas; idempotent. Returns counts of what it created."""
    created = {"arenas": 0, "models": 0, "prompts": 0}
    with transaction.atomic():
        for position, spec in enumerate(DEMO_ARENAS):
            prompt_set, _ = PromptSet.objects.get_or_create(
                slug=f"demo-{spec.slug}", defaults={"name": f"Demo prompts: {spec.name}"}
            )
            arena, was_created = Arena.objects.get_or_create(
                slug=spec.slug,
                defaults={
                    "name": spec.name,
                    "description": spec.description,
                    "task": spec.task,
                    "prompt_set": prompt_set,
                    "k_values": list(spec.k_values),
                    "vote_modes": [str(m) for m in spec.vote_modes],
                    "default_mode": str(spec.default_mode),
                    "position": position,
                    "allow_user_prompts": spec.allow_user_prompts,
                    "media_profile": dict(spec.media_profile),
                },
            )
            created["arenas"] += was_created
            for model in spec.models:
                obj, was_created = GenerativeModel.objects.get_or_create(
                    slug=slugify(model.name),
                    defaults={
                        "name": model.name,
                        "organisation": model.organisation,
                        "license": "Apache-2.0",
                        "description": f"Built-in demo generator, quality tier {model.quality} of 4.",
                        "task": spec.task,
                        "output_formats": list(model.formats),
                        "backend": "builtin",
                        "backend_config": {"quality": model.quality, "style": model.style},
                        "queue": "gen.cpu",
                    },
                )
                created["models"] += was_created
                arena.generative_models.add(obj)
            for index, text in enumerate(spec.prompts[:prompts_per_arena]):
                prompt, was_created = Prompt.objects.get_or_create(
                    prompt_set=prompt_set,
                    text=text,
                    defaults={"category": "demo", "tags": ["demo"]},
                )
                created["prompts"] += was_created
                if spec.task == Task.IMAGE_TO_3D and not prompt.conditioning_image:
                    # The "photo" a user would upload: a product shot of the object the 3D models build.
                    image = render_reference(prompt=text, seed=index)
                    prompt.conditioning_image.save(
                        f"cond-{prompt.pk}.png", ContentFile(image), save=True
                    )
    return created
