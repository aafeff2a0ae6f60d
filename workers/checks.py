"""A model's backend checked where its jobs run: the worker half of the admin's "Check now".

The web host checks a backend config's shape only (it may have no torch, no GPU, no weights);
a worker of the model's own queue runs the backend's full ``check_config`` (for diffusers:
torch and diffusers importable, the CUDA device, the weights folder and its
``model_index.json``, the pipeline class) and records the answer on the model.
"""

from __future__ import annotations

from arena.models import BackendCheckStatus, GenerativeModel
from arena.services import model_check_record
from workers.backends import BackendConfigError, backend_config_check


def backend_check_run(*, model_id: int, worker: str) -> str:
    """Check model ``model_id``'s backend in this process's environment and record the outcome
    with ``worker`` (this worker's hostname). Returns ``ok``, ``failed``, or ``missing`` for a
    model deleted since the check was asked for (nothing is recorded then)."""
    model = GenerativeModel.objects.filter(pk=model_id).first()
    if model is None:
        return "missing"
    formats = model.output_formats if isinstance(model.output_formats, list) else []
    try:
        # A config that is not a JSON object is the backend's to refuse, with its own words.
        backend_config_check(model.backend, model.backend_config, [str(f) for f in formats])
    except BackendConfigError as exc:
        status, message = BackendCheckStatus.FAILED, str(exc)
    except Exception as exc:
        # The check exists to report what breaks on this worker, whatever it is (a torch that
        # cannot load its CUDA libraries raises OSError, an overrun SoftTimeLimitExceeded):
        # recorded as failed rather than leaving the model "pending" for ever.
        status, message = BackendCheckStatus.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        status = BackendCheckStatus.OK
        message = (
            f"{model.backend}: the config and this worker's environment can make "
            f"{', '.join(map(str, formats)) or 'its formats'}"
        )
    model_check_record(
        model_id=model.pk,
        status=status,
        message=message,
        worker=worker,
        fingerprint=model.backend_fingerprint(),
    )
    return str(status)
