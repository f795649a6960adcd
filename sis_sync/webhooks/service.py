"""Receiving provider webhooks: verify, remember, and start (or join) a delta sync.

A request is accepted when, in this order: the tenant has a provider of the path's kind with a
`webhookSecret` (Clever providers for /clever, ClassLink and OneRoster API providers for
/classlink); `X-SIS-Signature` is well formed and its timestamp within 5 minutes of ours; the
HMAC of one of those providers verifies (that provider is the event's); the client address is
inside that provider's `webhookAllowIps` (if it has one); the body is a JSON object; and its
event id was not seen before (ids are kept a day, well past the 5-minute window).

An accepted event never runs a sync of its own when one is under way, and is never lost:
- no active run: a delta run starts (handed to the workers) and the event is tied to it;
- an active run that has not started reading the source (PENDING, applying, not a dry or
  selective run): it will see the change, the event joins it;
- otherwise (the run is already reading): the event is deferred; when that run ends, one
  follow-up delta run takes every deferred event of the provider (`webhooks_follow_up`).
So a burst of 50 webhooks makes one run, or at most one run plus one follow-up.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sis_sync.audit import REFUSED, audit_record
from sis_sync.models import (
    ProviderType,
    RunMode,
    RunStatus,
    SisProvider,
    Tenant,
    WebhookEvent,
    WebhookEventState,
)
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.webhooks import signature as sig

log = logging.getLogger(__name__)

SOURCES: dict[str, tuple[str, ...]] = {
    "clever": (ProviderType.CLEVER,),
    "classlink": (ProviderType.CLASSLINK, ProviderType.ONEROSTER_API),
}
EVENT_MEMORY = dt.timedelta(days=1)
EVENT_ID_HEADER = "X-SIS-Event-Id"


class WebhookRefused(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, provider: SisProvider | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.provider = provider


@dataclass(frozen=True)
class Accepted:
    provider_id: int
    event_id: str
    event_type: str
    run_id: int | None  # the run that will apply the event (None: a follow-up run will)
    started: bool  # this event started that run
    deferred: bool  # a run is reading the source: a follow-up run will apply the event


def webhook_receive(
    *,
    source: str,
    tenant_ref: str,
    body: bytes,
    signature_header: str,
    event_id_header: str = "",
    client_ip: str,
    now: dt.datetime | None = None,
) -> Accepted:
    """Checks and accepts one webhook request, or raises WebhookRefused; audits either way."""
    tenant = _tenant(tenant_ref)
    details: dict[str, Any] = {"source": source, "ip": client_ip}
    try:
        accepted = _receive(source, tenant, body, signature_header, event_id_header, client_ip, now)
    except WebhookRefused as exc:
        audit_record(
            "webhook.received",
            actor="webhook",
            target=exc.provider,
            tenant=tenant,
            outcome=REFUSED,
            message=exc.message,
            details={**details, "code": exc.code},
        )
        raise
    audit_record(
        "webhook.received",
        actor="webhook",
        target=SisProvider.objects.get(pk=accepted.provider_id),
        message=_describe(accepted),
        details={
            **details,
            "eventId": accepted.event_id,
            "eventType": accepted.event_type,
            "runId": accepted.run_id,
            "deferred": accepted.deferred,
        },
    )
    return accepted


def _describe(accepted: Accepted) -> str:
    if accepted.deferred:
        return "deferred: a follow-up delta sync runs when the current sync ends"
    if accepted.started:
        return f"started delta sync run {accepted.run_id}"
    return f"joined pending run {accepted.run_id}"


def _tenant(ref: str) -> Tenant | None:
    tenant = Tenant.objects.filter(slug=ref).first()
    if tenant is None and ref.isdigit():
        tenant = Tenant.objects.filter(pk=int(ref)).first()
    return tenant


def _unauthorized(code: str, message: str) -> WebhookRefused:
    return WebhookRefused(401, code, message)


def _receive(
    source: str,
    tenant: Tenant | None,
    body: bytes,
    header: str,
    event_id_header: str,
    client_ip: str,
    now: dt.datetime | None,
) -> Accepted:
    if tenant is None:
        raise _unauthorized("unknown_tenant", "No such tenant")
    candidates = [
        (provider, config)
        for provider in tenant.providers.filter(provider_type__in=SOURCES[source]).order_by("pk")
        if (config := provider.config).get("webhookSecret")
    ]
    if not candidates:
        raise _unauthorized(
            "webhooks_not_configured",
            f"No {source} provider of this tenant has a webhookSecret: webhooks are off",
        )
    if not header:
        raise _unauthorized("signature_missing", f"The {sig.HEADER} header is missing")
    try:
        signature = sig.parse(header)
    except sig.SignatureMalformed as exc:
        raise _unauthorized("signature_malformed", str(exc)) from None
    now = now or timezone.now()
    if abs(now.timestamp() - signature.timestamp) > sig.TOLERANCE_SECONDS:
        raise _unauthorized(
            "stale_timestamp",
            "The signature's timestamp is more than 5 minutes from ours: a stale or replayed "
            "request (or a clock that is off)",
        )
    address = _address(client_ip)
    if all(config.get("webhookAllowIps") for _, config in candidates) and not any(
        _allowed(address, config) for _, config in candidates
    ):
        raise WebhookRefused(403, "ip_not_allowed", f"{client_ip} is not in webhookAllowIps")
    match = next(
        (
            (provider, config)
            for provider, config in candidates
            if sig.verifies(signature, config["webhookSecret"], body)
        ),
        None,
    )
    if match is None:
        raise _unauthorized(
            "signature_invalid", "The signature does not match: check the webhookSecret"
        )
    provider, config = match
    if config.get("webhookAllowIps") and not _allowed(address, config):
        raise WebhookRefused(
            403, "ip_not_allowed", f"{client_ip} is not in webhookAllowIps", provider=provider
        )
    if not provider.enabled:
        raise WebhookRefused(403, "provider_disabled", "Provider disabled", provider=provider)
    event = _event(body, provider)
    event_id = str(event.get("id") or event.get("eventId") or event_id_header or "")
    if not event_id:
        # No id: the signature itself names the request, so the same request is still refused.
        event_id = f"sig:{signature.digests[0]}"
    event_type = str(event.get("type") or event.get("eventType") or "")[:100]
    return _accept(provider, event_id[:255], event_type, now)


def _event(body: bytes, provider: SisProvider) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        event = None
    if not isinstance(event, dict):
        raise WebhookRefused(
            400, "bad_request", "The body must be a JSON object (an event)", provider=provider
        )
    return event


def _address(client_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(client_ip.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _allowed(address: Any, config: dict[str, Any]) -> bool:
    if address is None:
        return False
    networks = [ipaddress.ip_network(n, strict=False) for n in config["webhookAllowIps"]]
    return any(address.version == n.version and address in n for n in networks)


def webhooks_forget_old(
    *, provider: SisProvider | None = None, now: dt.datetime | None = None
) -> int:
    """Forgets event ids older than a day (replays that old fail the timestamp check)."""
    events = WebhookEvent.objects.filter(received_at__lt=(now or timezone.now()) - EVENT_MEMORY)
    if provider is not None:
        events = events.filter(provider=provider)
    deleted, _ = events.exclude(state=WebhookEventState.DEFERRED).delete()
    return deleted


def _accept(provider: SisProvider, event_id: str, event_type: str, now: dt.datetime) -> Accepted:
    from sis_sync.sync import sync_start
    from sis_sync.tasks import enqueue_run

    webhooks_forget_old(provider=provider, now=now)
    with transaction.atomic():
        # The provider's row lock orders this against a run ending (webhooks_follow_up).
        SisProvider.objects.select_for_update().get(pk=provider.pk)
        try:
            with transaction.atomic():
                event = WebhookEvent.objects.create(
                    provider=provider,
                    event_id=event_id,
                    event_type=event_type,
                    state=WebhookEventState.QUEUED,
                )
        except IntegrityError:
            raise WebhookRefused(
                401,
                "replayed",
                f"Event {event_id} was already received: a replay is refused",
                provider=provider,
            ) from None
        active = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("id").first()
        started = False
        if active is None:
            active = sync_start(
                provider=provider, is_manual=False, triggered_by="webhook", mode=RunMode.DELTA
            )
            enqueue_run(active.pk)
            started = True
        if started or _joinable(active):
            event.run = active
            event.save(update_fields=["run"])
        else:
            event.state = WebhookEventState.DEFERRED
            event.save(update_fields=["state"])
    if event.state == WebhookEventState.DEFERRED:
        # The run may have ended between our read and our commit, before it could see this
        # event (a run ending outside a load checks for deferred events without our lock).
        active.refresh_from_db(fields=["status"])
        if active.status not in ACTIVE_STATUSES:
            webhooks_follow_up(provider_id=provider.pk)
        return Accepted(provider.pk, event_id, event_type, None, False, True)
    return Accepted(provider.pk, event_id, event_type, active.pk, started, False)


def webhooks_deferred(*, provider_id: int) -> bool:
    return WebhookEvent.objects.filter(
        provider_id=provider_id, state=WebhookEventState.DEFERRED
    ).exists()


def _joinable(run: Any) -> bool:
    """A run that has not read the source yet and will apply everything it reads."""
    return run.status == RunStatus.PENDING and not run.dry_run and not run.entities


def webhooks_follow_up(*, provider_id: int) -> int | None:
    """After a provider's run ended: one delta run for every event deferred meanwhile.

    Returns the run started (None if nothing was deferred, or a run is active again: its end
    calls this once more).
    """
    from sis_sync.errors import SyncError
    from sis_sync.sync import sync_start
    from sis_sync.tasks import enqueue_run

    if not webhooks_deferred(provider_id=provider_id):
        return None
    with transaction.atomic():
        provider = SisProvider.objects.select_for_update().filter(pk=provider_id).first()
        if provider is None:
            return None
        deferred = WebhookEvent.objects.filter(provider=provider, state=WebhookEventState.DEFERRED)
        active = provider.runs.filter(status__in=ACTIVE_STATUSES).order_by("id").first()
        if active is not None:
            if _joinable(active):
                deferred.update(state=WebhookEventState.QUEUED, run=active)
            return None
        try:
            run = sync_start(
                provider=provider, is_manual=False, triggered_by="webhook", mode=RunMode.DELTA
            )
        except SyncError as exc:  # disabled since: the events wait for the next sync
            log.info("webhook follow-up of provider %s not started: %s", provider_id, exc)
            return None
        count = deferred.update(state=WebhookEventState.QUEUED, run=run)
        enqueue_run(run.pk)
    log.info("webhook follow-up run %s for %s deferred events", run.pk, count)
    return run.pk
