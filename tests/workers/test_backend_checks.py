"""Backend checks split by host: the admin (web host, no torch) checks a config's shape; "Check
now" sends the full check to a worker of the model's queue, which records what it found.

torch is made unimportable where this machine plays the slim web host and a worker that cannot
run diffusers (CI installs it: test_diffusers_pipeline.py runs the real one); a stand-in torch
plays a worker that can.
"""

from __future__ import annotations

import json
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery.utils.nodenames import gethostname
from django.test import Client

from arena.models import BackendCheckStatus, GenerativeModel
from arena.services import model_check_record, model_checks_request
from config.celery import app
from tests.factories import GenerativeModelFactory
from workers.checks import backend_check_run
from workers.ops import queue_depths
from workers.tasks import check_backend

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/arena/generativemodel/"
sent_checks: list[dict[str, Any]] = []


def record_sent(*, model_id: int, queue: str) -> None:
    """A stand-in BACKEND_CHECK_SENDER that keeps what it was asked to send."""
    sent_checks.append({"model_id": model_id, "queue": queue})


def refuse_to_send(*, model_id: int, queue: str) -> None:
    raise ConnectionRefusedError("[Errno 111] Connection refused")


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import torch`` and ``import diffusers`` fail, as on the slim web image. (diffusers too:
    imported for real while torch cannot be, it would keep stand-ins for every torch class for
    the rest of the process, under the real-library tests of test_diffusers_pipeline.py.)"""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "diffusers", None)


@pytest.fixture
def stand_in_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker with torch and diffusers installed (CPU only)."""
    torch = types.ModuleType("torch")
    torch.__dict__["cuda"] = types.SimpleNamespace(is_available=lambda: False)
    diffusers = types.ModuleType("diffusers")
    diffusers.__dict__["__version__"] = "0.0-stand-in"
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "diffusers", diffusers)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    folder = tmp_path / "sdxl"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLPipeline"})
    )
    return folder


def diffusers_form(config: dict[str, Any], slug: str = "sdxl-local") -> dict[str, Any]:
    return {
        "name": slug.upper(), "slug": slug, "task": "text-to-image", "output_formats": '["png"]',
        "backend": "diffusers", "backend_config": json.dumps(config), "queue": "gen.gpu",
        "max_in_flight": 2, "daily_budget": 0, "is_active": "on",
    }  # fmt: skip


def diffusers_model(config: dict[str, Any] | None = None, **kwargs: Any) -> GenerativeModel:
    return GenerativeModelFactory.create(
        backend="diffusers",
        backend_config=config or {"weights_path": "/models/sdxl", "steps": 20},
        queue="gen.gpu",
        **kwargs,
    )


def purge(queue: str) -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


# -- the web host: shape only ------------------------------------------------------------------
def test_the_admin_saves_a_well_shaped_diffusers_model_on_a_host_without_torch(
    admin_client: Client, no_torch: None
) -> None:
    response = admin_client.post(
        f"{CHANGELIST}add/", diffusers_form({"weights_path": "/models/sdxl", "steps": 20})
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    model = GenerativeModel.objects.get(slug="sdxl-local")
    assert model.backend_config == {"weights_path": "/models/sdxl", "steps": 20}
    assert model.check_status == BackendCheckStatus.NOT_CHECKED


def test_the_admin_still_refuses_a_malformed_diffusers_config_naming_the_option(
    admin_client: Client, no_torch: None
) -> None:
    response = admin_client.post(
        f"{CHANGELIST}add/", diffusers_form({"weights_path": "/models/sdxl", "steps": 0})
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["backend_config"]
    assert "diffusers: 'steps' must be an integer from 1 to 500, got 0" in errors["backend_config"]
    assert "&#x27;steps&#x27; must be an integer from 1 to 500" in response.content.decode()
    assert not GenerativeModel.objects.filter(slug="sdxl-local").exists()


def test_the_admin_refuses_video_from_a_diffusers_model_without_asking_for_torch(
    admin_client: Client, no_torch: None
) -> None:
    form = {**diffusers_form({"weights_path": "/models/sdxl"}), "task": "text-to-video"}
    form["output_formats"] = '["mp4"]'

    response = admin_client.post(f"{CHANGELIST}add/", form)

    errors = response.context["adminform"].form.errors
    assert "mp4 output is not supported yet" in errors["backend_config"][0]
    assert "torch" not in errors["backend_config"][0]


# -- the worker: the full check, recorded --------------------------------------------------------
def test_a_worker_without_torch_records_a_failed_check_saying_so(no_torch: None) -> None:
    model = diffusers_model()

    check_backend.apply(args=[model.pk])  # the task, run in this process as a worker would

    model.refresh_from_db()
    assert model.check_status == BackendCheckStatus.FAILED
    assert "this machine cannot run local pipelines: not installed: torch" in model.check_message
    assert model.check_worker == gethostname()
    assert model.checked_at is not None
    assert not model.check_is_stale


def test_the_admin_shows_the_failed_check_with_its_worker_and_message(
    admin_client: Client, no_torch: None
) -> None:
    model = diffusers_model()
    backend_check_run(model_id=model.pk, worker="gpu-1@box")

    change = admin_client.get(f"{CHANGELIST}{model.pk}/change/").content.decode()
    listing = admin_client.get(CHANGELIST).content.decode()

    assert "Last backend check" in change
    assert "failed on worker gpu-1@box at " in change
    assert "not installed: torch" in change
    assert ">failed</span>" in listing
    assert "not installed: torch" in listing  # the whole summary, on hover


def test_a_builtin_model_checks_ok() -> None:
    model = GenerativeModelFactory.create()

    status = backend_check_run(model_id=model.pk, worker="cpu-1@box")

    model.refresh_from_db()
    assert status == model.check_status == BackendCheckStatus.OK
    assert model.check_message == "builtin: the config and this worker's environment can make png"
    assert model.check_worker == "cpu-1@box"


def test_a_worker_with_torch_and_the_weights_checks_a_diffusers_model_ok(
    stand_in_torch: None, weights: Path
) -> None:
    model = diffusers_model({"weights_path": str(weights), "device": "cpu"})

    assert backend_check_run(model_id=model.pk, worker="gpu-1@box") == "ok"


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (None, "has no model_index.json"),
        ("{not json", "model_index.json' is not readable"),
        ('{"_class_name": 3}', "names no pipeline class"),
    ],
)
def test_a_worker_refuses_weights_whose_pipeline_config_is_unreadable(
    stand_in_torch: None, weights: Path, index: str | None, message: str
) -> None:
    if index is None:
        (weights / "model_index.json").unlink()
    else:
        (weights / "model_index.json").write_text(index)
    model = diffusers_model({"weights_path": str(weights), "device": "cpu"})

    backend_check_run(model_id=model.pk, worker="gpu-1@box")

    model.refresh_from_db()
    assert model.check_status == BackendCheckStatus.FAILED
    assert message in model.check_message


def test_a_worker_without_cuda_says_so(stand_in_torch: None, weights: Path) -> None:
    model = diffusers_model({"weights_path": str(weights)})

    backend_check_run(model_id=model.pk, worker="gpu-1@box")

    model.refresh_from_db()
    assert "no CUDA device is available on this machine" in model.check_message


def test_an_unknown_backend_is_recorded_as_a_failed_check() -> None:
    model = GenerativeModelFactory.create(backend="teleport", backend_config={})

    assert backend_check_run(model_id=model.pk, worker="cpu-1@box") == "failed"

    model.refresh_from_db()
    assert model.check_message == (
        "unknown backend 'teleport'; available: builtin, diffusers, gradio, http"
    )


def test_a_config_that_is_not_an_object_is_recorded_as_a_failed_check() -> None:
    model = GenerativeModelFactory.create(backend_config=["quality", 3])

    backend_check_run(model_id=model.pk, worker="cpu-1@box")

    model.refresh_from_db()
    assert model.check_status == BackendCheckStatus.FAILED
    assert "backend_config must be a JSON object" in model.check_message


def test_an_unexpected_error_in_a_check_is_recorded_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setattr("workers.checks.backend_config_check", broken)
    model = GenerativeModelFactory.create()

    backend_check_run(model_id=model.pk, worker="gpu-1@box")

    model.refresh_from_db()
    assert model.check_status == BackendCheckStatus.FAILED
    assert model.check_message == "OSError: libcudart.so.12: cannot open shared object file"


def test_checking_a_deleted_model_does_nothing() -> None:
    model = GenerativeModelFactory.create()
    pk = model.pk
    model.delete()

    assert check_backend.apply(args=[pk]).get() == "missing"
    assert model_check_record(model_id=pk, status="ok", message="", worker="w") is False


def test_only_a_finished_check_can_be_recorded() -> None:
    model = GenerativeModelFactory.create()

    with pytest.raises(ValueError, match="status must be 'ok' or 'failed'"):
        model_check_record(model_id=model.pk, status="pending", message="", worker="w")


def test_a_check_is_stale_once_the_model_changes() -> None:
    model = GenerativeModelFactory.create()
    backend_check_run(model_id=model.pk, worker="cpu-1@box")
    model.refresh_from_db()
    assert not model.check_is_stale

    model.backend_config = {"quality": 4}
    model.save()

    assert model.check_is_stale


# -- "Check now" ---------------------------------------------------------------------------------
def test_a_model_never_checked_shows_not_checked_yet(admin_client: Client) -> None:
    model = GenerativeModelFactory.create()

    change = admin_client.get(f"{CHANGELIST}{model.pk}/change/").content.decode()
    listing = admin_client.get(CHANGELIST).content.decode()

    assert "not checked yet" in change
    assert ">not checked yet</span>" in listing
    assert f'action="{CHANGELIST}{model.pk}/check/"' in change
    assert ">Check now</button>" in change


def test_the_check_now_action_sends_one_check_per_selected_model_to_its_queue(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    queue = f"gen.test-check-{uuid.uuid4().hex[:6]}"
    chosen = [GenerativeModelFactory.create(queue=queue) for _ in range(2)]
    other = GenerativeModelFactory.create(queue=queue)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                CHANGELIST,
                {"action": "check_backends", "_selected_action": [str(m.pk) for m in chosen]},
                follow=True,
            )

        (depth,) = queue_depths([queue])
        assert depth.messages == 2
    finally:
        purge(queue)
    page = response.content.decode()
    assert f"2 backend check(s) sent to the workers of {queue}" in page
    statuses = dict(GenerativeModel.objects.values_list("pk", "check_status"))
    assert [statuses[m.pk] for m in chosen] == [BackendCheckStatus.PENDING] * 2
    assert statuses[other.pk] == BackendCheckStatus.NOT_CHECKED
    assert f"pending: sent to queue {queue} at " in page


def test_the_action_names_each_model_and_its_queue_to_the_sender(
    admin_client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.BACKEND_CHECK_SENDER = f"{__name__}.record_sent"
    sent_checks.clear()
    cpu = GenerativeModelFactory.create(queue="gen.cpu")
    gpu = diffusers_model()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            CHANGELIST,
            {"action": "check_backends", "_selected_action": [str(cpu.pk), str(gpu.pk)]},
        )

    assert sorted(sent_checks, key=lambda s: s["model_id"]) == [
        {"model_id": cpu.pk, "queue": "gen.cpu"},
        {"model_id": gpu.pk, "queue": "gen.gpu"},
    ]


def test_the_change_page_button_sends_a_check_and_comes_back(
    admin_client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.BACKEND_CHECK_SENDER = f"{__name__}.record_sent"
    sent_checks.clear()
    model = diffusers_model()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{CHANGELIST}{model.pk}/check/")

    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}{model.pk}/change/"
    assert sent_checks == [{"model_id": model.pk, "queue": "gen.gpu"}]
    page = admin_client.get(response["Location"]).content.decode()
    assert "1 backend check(s) sent to the workers of gen.gpu" in page
    assert "pending: sent to queue gen.gpu at " in page


def test_the_check_button_takes_posts_only_and_known_models(admin_client: Client) -> None:
    model = GenerativeModelFactory.create()

    assert admin_client.get(f"{CHANGELIST}{model.pk}/check/").status_code == 405
    assert admin_client.post(f"{CHANGELIST}999999/check/").status_code == 404
    assert GenerativeModel.objects.get(pk=model.pk).check_status == ""


def test_the_check_button_is_for_staff_only(client: Client) -> None:
    model = GenerativeModelFactory.create()

    response = client.post(f"{CHANGELIST}{model.pk}/check/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert GenerativeModel.objects.get(pk=model.pk).check_status == ""


def test_a_check_that_cannot_be_sent_is_recorded_as_failed(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.BACKEND_CHECK_SENDER = f"{__name__}.refuse_to_send"
    model = GenerativeModelFactory.create()

    with django_capture_on_commit_callbacks(execute=True):
        model_checks_request(models=[model])

    model.refresh_from_db()
    assert model.check_status == BackendCheckStatus.FAILED
    assert model.check_message == (
        "the check could not be sent to queue 'gen.cpu': [Errno 111] Connection refused"
    )
