"""Request hygiene for every interface, and JSON errors for the whole API.

* Control characters (C0 except tab, newline and carriage return, and DEL) never reach a view: a
  path holding one is not found (404), a query or form field holding one is a bad request (400).
  PostgreSQL cannot store NUL at all, so before this a ``%00`` in a slug was a 500.
* Under ``/api/`` a request body must be JSON (415 otherwise), and every error is JSON
  (``{"error", "code", "detail"}``): the URL resolver's 404, a 405, Django's 400/413 and a 500
  included, which Django would otherwise answer as HTML.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_TYPES = ("application/json",)
# A raw control character is invalid inside a JSON string, so one can only arrive escaped (\b, \f
# or \u0000-\u001f, \u007f): bodies without such an escape are not parsed a second time.
_ESCAPED_CONTROL = re.compile(rb"\\(?:[bf]|u00(?:[01][0-9a-fA-F]|7[fF]))")
_BODY_METHODS = ("POST", "PUT", "PATCH")
_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    500: "server_error",
}


def has_control_characters(text: str) -> bool:
    return bool(_CONTROL.search(text))


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON document (keys included), with where it sits."""
    if isinstance(value, str):
        yield where or "body", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}" if where else str(key), str(key)
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def api_error(status: int, message: str, detail: Any = None) -> JsonResponse:
    code = _CODES.get(status, "http_error")
    return JsonResponse({"error": message, "code": code, "detail": detail}, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if _is_api(request):
        return api_error(status, message)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestHygieneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if _is_api(request) and response.status_code >= 400 and not _is_json(response):
            phrase = _phrase(response.status_code)
            return api_error(response.status_code, f"{phrase}.")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None  # Django's own 500 page (or the debug page)
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return api_error(500, "Something went wrong on our side; the request changed nothing.")

    def _refused(self, request: HttpRequest) -> HttpResponse | None:
        if has_control_characters(request.path):
            return _refusal(request, 404, "Not found.")
        for key, values in request.GET.lists():
            if has_control_characters(key) or any(map(has_control_characters, values)):
                return _refusal(
                    request, 400, f"The query parameter {key[:40]!r} holds control characters."
                )
        if request.method not in _BODY_METHODS:
            return None
        if _is_api(request):
            return _api_body_refused(request)
        content_type = request.content_type or ""
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, values in request.POST.lists():
                if has_control_characters(key) or any(map(has_control_characters, values)):
                    return _refusal(
                        request, 400, f"The field {key[:40]!r} holds control characters."
                    )
        return None


def _api_body_refused(request: HttpRequest) -> HttpResponse | None:
    """415 for a body that is not JSON, 400 for JSON text holding control characters."""
    try:
        body = request.body
    except RequestDataTooBig:
        return api_error(
            413, f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    if not body:
        return None
    if (request.content_type or "") not in _JSON_TYPES:
        return api_error(
            415,
            "Send the request body as JSON with 'Content-Type: application/json'.",
            {"content_type": request.content_type or None},
        )
    if not _ESCAPED_CONTROL.search(body):
        return None  # JSON can only hold a control character escaped: no escape, nothing to find
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None  # the API's own parser answers malformed JSON (400)
    for where, text in _strings(document):
        if has_control_characters(text):
            return api_error(
                400, f"{where[:60]!r} holds control characters.", {"field": where[:60]}
            )
    return None


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class MessageMiddleware(DjangoMessageMiddleware):
    """Django's, on pages only: the JSON API shows no flash messages, and the storage set up
    for each request (a cookie and a session backend) was a measurable share of a vote's CPU.
    (``messages.add_message`` on an API request fails loudly, as without the middleware.)"""

    def process_request(self, request: HttpRequest) -> None:
        if not _is_api(request):
            super().process_request(request)


# Nothing in a JSON answer may load or run anything, nor may it be framed.
JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (with its nonce) on pages; on JSON answers a fixed, stricter one.

    A JSON answer runs no script, so it needs no nonce, and django-csp would build both of its
    policies for every API call (a measurable share of the vote path's CPU).
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            response.get("Content-Type", "").startswith("application/json")
            and CSP_HEADER not in response
            and not getattr(response, "_csp_exempt", False)
        ):
            response[CSP_HEADER] = JSON_CONTENT_SECURITY_POLICY
            return response
        return super().process_response(request, response)
