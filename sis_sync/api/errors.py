"""Every API error, whatever raised it, as `{"error": {"code", "message", "details"}}`.

Domain errors map to status codes here, once: BadRequest → 400, AlreadyRunning → 409 (with the
running run's id), any other SyncError → 409 (the request conflicts with the current state),
ConnectorError → 502. Anything unforeseen is logged and answered 500 in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from connectors.base import ConnectorError
from sis_sync.errors import AlreadyRunning, BadRequest, SyncError

log = logging.getLogger("sis_sync.api")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes one error body."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.APIException):
        code, message, details = _drf_error(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
            details = {"retryAfter": int(exc.wait)}
        http_status = exc.status_code
    elif isinstance(exc, AlreadyRunning):
        code, message, details = "already_running", exc.message, {"runId": exc.run_id}
        http_status = status.HTTP_409_CONFLICT
    elif isinstance(exc, BadRequest):
        code, message, details = "bad_request", exc.message, {}
        http_status = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, SyncError):
        code, message, details = "conflict", exc.message, {}
        http_status = status.HTTP_409_CONFLICT
    elif isinstance(exc, ConnectorError):
        code, message, details = "provider_error", exc.message, {}
        http_status = status.HTTP_502_BAD_GATEWAY
    else:
        view = context.get("view")
        log.exception("API error in %s", type(view).__name__ if view else "a view")
        code, message, details = "server_error", "Internal error; it has been logged", {}
        http_status = status.HTTP_500_INTERNAL_SERVER_ERROR
    set_rollback()
    return Response(error_body(code, message, details), status=http_status, headers=headers)


def _drf_error(exc: exceptions.APIException) -> tuple[str, str, Any]:
    code = exc.default_code if isinstance(exc.default_code, str) else "error"
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"nonFieldErrors": exc.detail}
        return "invalid", f"Invalid input: {_first_message(exc.detail)}", details
    return code, str(exc.detail), {}


def _first_message(detail: Any, path: str = "") -> str:
    """The first problem in a (nested) validation error, with the field it is about."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "nonFieldErrors" else ""
            return _first_message(value, f"{path}.{name}" if path and name else path or name)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], path)
    return f"{path}: {detail}" if path else str(detail)


@csrf_exempt  # it changes nothing; without this a POST here would get Django's HTML 403
def not_found_view(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that names no endpoint."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}"), status=404)
