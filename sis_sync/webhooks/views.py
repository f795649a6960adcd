"""The HTTP face of the webhooks: 202 on accept, a JSON error otherwise.

The client address is REMOTE_ADDR, never X-Forwarded-For (which any client can forge): behind
a reverse proxy, have the proxy and the WSGI server set REMOTE_ADDR to the real client.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sis_sync.webhooks import signature as sig
from sis_sync.webhooks.service import EVENT_ID_HEADER, WebhookRefused, webhook_receive


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


def _receive(request: HttpRequest, source: str, tenant_id: str) -> JsonResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "too_large", "The webhook body is too large")
    try:
        accepted = webhook_receive(
            source=source,
            tenant_ref=tenant_id,
            body=body,
            signature_header=request.headers.get(sig.HEADER, ""),
            event_id_header=request.headers.get(EVENT_ID_HEADER, ""),
            client_ip=request.META.get("REMOTE_ADDR", ""),
        )
    except WebhookRefused as exc:
        return _error(exc.status, exc.code, exc.message)
    return JsonResponse(
        {
            "accepted": True,
            "providerId": accepted.provider_id,
            "eventId": accepted.event_id,
            "runId": accepted.run_id,
            "followUp": accepted.deferred,
        },
        status=202,
    )


@csrf_exempt
@require_POST
def clever_webhook(request: HttpRequest, tenant_id: str) -> JsonResponse:
    return _receive(request, "clever", tenant_id)


@csrf_exempt
@require_POST
def classlink_webhook(request: HttpRequest, tenant_id: str) -> JsonResponse:
    return _receive(request, "classlink", tenant_id)
