"""The ``gradio`` backend against a real Gradio app on loopback (see conftest.py, gradio_app/)."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from PIL import Image

from workers.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    GradioBackend,
    RemoteTransientError,
    TransientBackendError,
)
from workers.media import validate


def request(url: str, fmt: str = "png", **config: Any) -> GenerationRequest:
    image = config.pop("conditioning_image", None)
    prompt = config.pop("prompt", "a red cat")
    seed = config.pop("seed", 42)
    return GenerationRequest(
        fmt=fmt,
        prompt=prompt,
        seed=seed,
        config={"src": url, "timeout_s": 30, **config},
        conditioning_image=image,
    )


def pixels(data: bytes) -> list[tuple[int, int, int]]:
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        return [rgb.getpixel((x, 0)) for x in range(3)]  # type: ignore[misc]


# -- against the app ---------------------------------------------------------------------------
def test_it_returns_a_valid_png_from_an_image_endpoint(gradio_url: str) -> None:
    backend = GradioBackend()
    out = backend.generate(
        request(gradio_url, api_name="/image", params={"prompt": "{prompt}", "seed": "{seed}"})
    )
    assert (out.extension, out.content_type, out.media_type) == ("png", "image/png", "image")
    assert validate(out.data, "png").width == 32


def test_it_substitutes_prompt_seed_and_image_into_the_params(gradio_url: str) -> None:
    cond = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(cond, format="PNG")
    out = GradioBackend().generate(
        request(
            gradio_url,
            api_name="/echo",
            params={"prompt": "a photo of {prompt}, 4k", "seed": "{seed}", "picture": "{image}"},
            seed=0x123456,
            conditioning_image=cond.getvalue(),
        )
    )
    seed_rgb, prompt_rgb, image_rgb = pixels(out.data)
    assert seed_rgb == (0x12, 0x34, 0x56)
    assert prompt_rgb == tuple(hashlib.sha256(b"a photo of a red cat, 4k").digest()[:3])
    assert image_rgb == (10, 200, 30)


def test_it_passes_positional_params_and_none_without_an_image(gradio_url: str) -> None:
    out = GradioBackend().generate(
        request(gradio_url, api_name="/echo", params=["{prompt}", "{seed}", "{image}"], seed=7)
    )
    seed_rgb, prompt_rgb, image_rgb = pixels(out.data)
    assert seed_rgb == (0, 0, 7)
    assert prompt_rgb == tuple(hashlib.sha256(b"a red cat").digest()[:3])
    assert image_rgb == (0, 0, 0)


def test_it_returns_a_valid_video(gradio_url: str) -> None:
    out = GradioBackend().generate(request(gradio_url, "mp4", api_name="/video", params={}))
    assert (out.extension, out.media_type) == ("mp4", "video")
    assert validate(out.data, "mp4").duration_s


def test_it_returns_a_valid_glb(gradio_url: str) -> None:
    out = GradioBackend().generate(
        request(gradio_url, "glb", api_name="/mesh", params={"prompt": "{prompt}", "seed": 1})
    )
    assert (out.extension, out.content_type) == ("glb", "model/gltf-binary")
    assert validate(out.data, "glb").detail["triangles"] == 1


def test_it_picks_the_output_by_key_path(gradio_url: str) -> None:
    config: dict[str, Any] = {
        "api_name": "/multi",
        "params": {"prompt": "{prompt}", "seed": "{seed}"},
    }
    out = GradioBackend().generate(request(gradio_url, output=1, **config))
    validate(out.data, "png")
    with pytest.raises(BackendError, match="not a file downloaded from the app"):
        GradioBackend().generate(request(gradio_url, output=0, **config))
    with pytest.raises(BackendError, match="not found in the result"):
        GradioBackend().generate(request(gradio_url, output=[1, "video"], **config))


def test_it_raises_backend_error_when_the_app_raises(gradio_url: str) -> None:
    with pytest.raises(BackendError, match="the model refused: a red cat") as info:
        GradioBackend().generate(request(gradio_url, api_name="/fail"))
    assert not isinstance(info.value, TransientBackendError)


def test_it_raises_transient_error_when_the_app_reports_a_quota(gradio_url: str) -> None:
    with pytest.raises(RemoteTransientError, match="GPU quota") as info:
        GradioBackend().generate(request(gradio_url, api_name="/quota"))
    assert info.value.retry_after_s == 65


def test_it_raises_transient_error_quickly_on_timeout(gradio_url: str) -> None:
    backend = GradioBackend()
    # Connect first (a generous deadline): on a loaded machine fetching the app's schema alone
    # can take over 1 s, and this test is about the prediction's deadline.
    backend.generate(
        request(gradio_url, api_name="/image", params={"prompt": "{prompt}", "seed": "{seed}"})
    )
    started = time.monotonic()
    with pytest.raises(TransientBackendError, match="did not finish within 1 s"):
        backend.generate(request(gradio_url, api_name="/slow", timeout_s=1))
    assert time.monotonic() - started < 6


def test_it_raises_backend_error_on_the_wrong_output_type(gradio_url: str) -> None:
    with pytest.raises(BackendError, match="expected glb, got png") as info:
        GradioBackend().generate(request(gradio_url, "glb", api_name="/wrong"))
    assert not isinstance(info.value, TransientBackendError)


def test_it_raises_backend_error_for_an_unknown_endpoint(gradio_url: str) -> None:
    with pytest.raises(BackendError, match="/nope") as info:
        GradioBackend().generate(request(gradio_url, api_name="/nope"))
    assert not isinstance(info.value, TransientBackendError)


def test_it_reuses_one_client_per_src_and_token(
    gradio_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = GradioBackend()
    params = {"prompt": "{prompt}", "seed": "{seed}"}
    backend.generate(request(gradio_url, api_name="/image", params=params))
    backend.generate(request(gradio_url, api_name="/image", params=params, seed=3))
    assert len(backend._clients) == 1
    monkeypatch.setenv("ARENA_TEST_HF_TOKEN", "hf_test_not_a_real_token")
    backend.generate(
        request(gradio_url, api_name="/image", params=params, hf_token_env="ARENA_TEST_HF_TOKEN")
    )
    assert len(backend._clients) == 2
    assert not any("hf_test" in str(key) for key in backend._clients)


def test_it_deletes_downloaded_outputs(gradio_url: str) -> None:
    backend = GradioBackend()
    params = {"prompt": "{prompt}", "seed": "{seed}"}
    backend.generate(request(gradio_url, api_name="/image", params=params))
    with pytest.raises(BackendError):  # picks the text; the image was downloaded all the same
        backend.generate(request(gradio_url, api_name="/multi", params=params, output=0))
    assert list(backend._downloads().iterdir()) == []


# -- without the app ---------------------------------------------------------------------------
def test_it_raises_transient_error_when_the_app_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientBackendError, match="cannot reach"):
        GradioBackend().generate(request(f"http://127.0.0.1:{port}/", api_name="/predict"))


def test_it_raises_config_error_when_the_token_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARENA_UNSET_TOKEN", raising=False)
    with pytest.raises(BackendConfigError, match=r"ARENA_UNSET_TOKEN.*not set"):
        GradioBackend().generate(
            request("http://127.0.0.1:9/", api_name="/predict", hf_token_env="ARENA_UNSET_TOKEN")
        )


VALID = {"src": "owner/space", "api_name": "/predict"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"api_name": "/predict"}, "'src' is required"),
        ({**VALID, "src": "not a space"}, "'src' must be a Space id"),
        ({**VALID, "src": "ftp://host/app"}, "'src' URL must be http"),
        ({**VALID, "src": "https://user:pw@host/"}, "must not embed credentials"),
        ({"src": "owner/space"}, "'api_name' is required"),
        ({**VALID, "api_name": "predict"}, "'api_name' must be an endpoint name starting with '/'"),
        ({**VALID, "params": {"prompt": "{promt}"}}, r"unknown placeholder \{promt\}"),
        ({**VALID, "params": ["a {prompt.__class__}"]}, "unknown placeholder"),
        ({**VALID, "params": {"p": "{prompt!r}"}}, "unknown placeholder"),
        ({**VALID, "params": {"p": "unbalanced {"}}, "not a valid template"),
        ({**VALID, "params": {"image": "see {image}"}}, "must be the whole value"),
        ({**VALID, "params": "{prompt}"}, "'params' must be an object"),
        ({**VALID, "token": "hf_abcdefghijklmnop"}, "'token' looks like an inline secret"),
        ({**VALID, "hf_token": "hf_abcdefghijklmnop"}, "hf_token_env"),
        ({**VALID, "hf_token_env": "hf_abcdefghijklmnopqrstuvwxyz"}, "NAME of an environment"),
        ({**VALID, "output": [0, 1.5]}, "'output' must be a key path"),
        ({**VALID, "output": []}, "'output' must be a key path"),
        ({**VALID, "timeout_s": 0}, "'timeout_s' must be a number"),
        (
            {**VALID, "timeout_s": "60"},
            r"'timeout_s' must be a number of seconds in \(0, 3600\], got '60'",
        ),
        ({**VALID, "timeout_s": True}, "'timeout_s' must be a number"),
        ([VALID], "backend_config must be a JSON object"),
        ({**VALID, "retries": 3}, "unknown option"),
    ],
)
def test_it_rejects_bad_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendConfigError, match=message):
        GradioBackend().check_config(config, ["png"])


def test_it_hides_a_token_given_instead_of_an_env_name() -> None:
    with pytest.raises(BackendConfigError) as info:
        GradioBackend().check_config({**VALID, "hf_token_env": "hf_secretsecretsecret"}, ["png"])
    assert "secretsecret" not in str(info.value)


def test_it_accepts_good_configs_and_checks_formats() -> None:
    backend = GradioBackend()
    backend.check_config(VALID, ["png", "mp4", "glb"])
    backend.check_config(
        {
            "src": "http://127.0.0.1:7860/app/",
            "api_name": "/generate_image",
            "params": {"text": "a photo of {prompt}", "seed": "{seed}", "n": 1, "x": None},
            "output": [0, "video"],
            "hf_token_env": "HF_TOKEN",
            "timeout_s": 120,
        },
        ["webp"],
    )
    with pytest.raises(BackendConfigError, match="cannot serve gif"):
        backend.check_config(VALID, ["gif"])


def test_it_imports_no_client_library_at_module_import() -> None:
    code = (
        "import sys, workers.backends; "
        "print(sorted(m for m in ('gradio_client', 'httpx', 'torch', 'diffusers') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
