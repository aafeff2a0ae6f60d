"""Serve MEDIA_ROOT with HTTP Range support (video seeking needs byte ranges).

Behind nginx set ``MEDIA_ACCEL_REDIRECT`` (e.g. ``/protected-media/``): the view still decides
what may be served, and answers with an ``X-Accel-Redirect`` header that hands the bytes (and the
Range handling) to nginx's ``internal`` location; no web process streams a file then. A proxy or
CDN serving MEDIA_ROOT by itself is ``SERVE_MEDIA=0``.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils._os import safe_join
from django.views.decorators.http import require_GET

from arena import selectors
from arena.errors import ExpiredToken, NotFound

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 256 * 1024
CONTENT_TYPES = {
    ".glb": "model/gltf-binary",
    ".ply": "application/octet-stream",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".webp": "image/webp",
    ".png": "image/png",
}


def _iter_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


@require_GET
def serve_media(
    request: HttpRequest, path: str
) -> HttpResponse | StreamingHttpResponse | FileResponse:
    return _send(request, _media_file(path, missing="Not found"), path)


def _media_file(path: str, *, missing: str) -> Path:
    """The file at ``path`` under MEDIA_ROOT; 404 (``missing``) if absent or outside it."""
    try:
        full = Path(safe_join(str(settings.MEDIA_ROOT), path))
    except Exception:  # SuspiciousFileOperation: a path escaping MEDIA_ROOT
        raise Http404(missing) from None
    if not full.is_file():
        raise Http404(missing)
    return full


@require_GET
def serve_battle_media(request: HttpRequest, token: str) -> HttpResponse | StreamingHttpResponse:
    """One slot's output through its per-battle link (``selectors.slot_media_url``).

    No header names the file or repeats by itself across battles: no ETag, no Last-Modified,
    no Content-Disposition, a private cache of the link's own lifetime. (Content-Type and size
    still follow the file: one format per arena, normalised on ingest, is issue 11's next
    step.) Served whatever SERVE_MEDIA says, since only Django can read the link, and sent by
    Django even behind nginx: nginx's static handler would add the file's Last-Modified and
    ETag, which are the same in every battle of an output.
    """
    try:
        slot = selectors.battle_slot_for_media(token=token)
    except NotFound:
        raise Http404("No such media link.") from None
    except ExpiredToken:
        return HttpResponse("This media link has expired; load the battle again.", status=410)
    name = slot.asset.file.name
    full = _media_file(name, missing="No such media link.")
    response = _send(request, full, name, whole_as_stream=True, accel=False)
    response["Cache-Control"] = f"private, max-age={settings.BATTLE_TOKEN_MAX_AGE_S}"
    return response


def _send(
    request: HttpRequest,
    full: Path,
    path: str,
    *,
    whole_as_stream: bool = False,
    accel: bool = True,
) -> HttpResponse | StreamingHttpResponse | FileResponse:
    """``full`` (the file at ``path`` under MEDIA_ROOT) whole or by byte range, or handed to
    nginx (MEDIA_ACCEL_REDIRECT, when ``accel``). ``whole_as_stream``: no FileResponse (it
    names the file)."""
    size = full.stat().st_size
    content_type = (
        CONTENT_TYPES.get(full.suffix.lower())
        or mimetypes.guess_type(full.name)[0]
        or "application/octet-stream"
    )
    if accel and settings.MEDIA_ACCEL_REDIRECT:
        handed = HttpResponse(content_type=content_type)
        handed["X-Accel-Redirect"] = settings.MEDIA_ACCEL_REDIRECT + quote(path)
        handed["Cache-Control"] = "public, max-age=86400"
        return handed
    match = _RANGE.match(request.headers.get("range", ""))
    if match and (match.group(1) or match.group(2)):
        first, last = match.group(1), match.group(2)
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # suffix range: the last N bytes
            start, end = max(0, size - int(last)), size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        length = end - start + 1
        streaming = StreamingHttpResponse(
            _iter_range(full, start, length), status=206, content_type=content_type
        )
        streaming["Content-Length"] = str(length)
        streaming["Content-Range"] = f"bytes {start}-{end}/{size}"
        streaming["Accept-Ranges"] = "bytes"
        streaming["Cache-Control"] = "public, max-age=86400"
        return streaming
    if whole_as_stream:
        whole = StreamingHttpResponse(_iter_range(full, 0, size), content_type=content_type)
        whole["Content-Length"] = str(size)
        whole["Accept-Ranges"] = "bytes"
        return whole
    file_response = FileResponse(full.open("rb"), content_type=content_type)
    file_response["Accept-Ranges"] = "bytes"
    file_response["Cache-Control"] = "public, max-age=86400"
    return file_response
