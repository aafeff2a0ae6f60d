"""A tiny, randomly initialised text-to-image diffusers pipeline, built from configs on the CPU.

Stable Diffusion's layout (UNet, VAE, CLIP text encoder, DDIM scheduler) at a few thousand
parameters a part, with a tokenizer whose vocabulary (the letters a to z) this module writes:
nothing is downloaded. ``save_pretrained`` writes it as a diffusers folder (``model_index.json``
and one folder per component, safetensors weights, about 0.5 MB) that the ``diffusers`` backend
loads like any real model. Its images are noise, 64x64 and above; what the tests check is the
path, not the pictures.

Imports torch, diffusers and transformers: only for tests that have them.
"""

from __future__ import annotations

import json
from pathlib import Path

PIPELINE_CLASS = "StableDiffusionPipeline"
SIZE = 64  # the backend's smallest width/height; the VAE's two blocks make 32x32 latents
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _tokenizer(folder: Path) -> object:
    """A CLIP tokenizer over single letters (a word's last letter carries the end-of-word mark),
    from a vocabulary and an empty merge list written into ``folder``."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in _LETTERS:
        vocab[letter] = len(vocab)
        vocab[f"{letter}</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=77,
    )


def build_tiny_pipeline(folder: Path, *, seed: int = 0) -> Path:
    """Build the pipeline (weights drawn with ``seed``) and save it into ``folder / "pipeline"``;
    returns that folder."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _tokenizer(folder / "vocabulary")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=SIZE,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=2 + 2 * len(_LETTERS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target = folder / "pipeline"
    pipeline.save_pretrained(target)
    return target
