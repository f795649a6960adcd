"""Tenant actions: create, configure (time zone, seat limit, SCIM target), and how a tenant's
settings read (SPEC §6)."""

from __future__ import annotations

import zoneinfo
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction

from connectors.netcheck import AddressNotAllowed, check_host
from sis_sync.audit import audit_record
from sis_sync.errors import BadRequest
from sis_sync.models import ScimTarget, Tenant
from sis_sync.provider_config import MASK

UNSET: Any = object()  # "leave as it is", distinct from None ("remove")


def tenant_get_or_create(*, slug: str, name: str | None = None) -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return tenant


def tenant_settings(*, tenant: Tenant) -> dict[str, Any]:
    """A tenant's settings as a user may read them; the SCIM token is never shown."""
    target = ScimTarget.objects.filter(tenant=tenant).first()
    return {
        "id": tenant.pk,
        "slug": tenant.slug,
        "name": tenant.name,
        "timezone": tenant.timezone,
        "seatLimit": tenant.seat_limit,
        "scim": (
            {"baseUrl": target.base_url, "token": MASK, "hasToken": bool(target.token_encrypted)}
            if target is not None
            else None
        ),
    }


def tenant_configure(
    *,
    tenant: Tenant,
    actor: str,
    timezone: str = UNSET,
    seat_limit: int | None = UNSET,
    scim: dict[str, Any] | None = UNSET,
) -> Tenant:
    """Changes what is given: `timezone` (IANA name), `seat_limit` (a count, or None for no
    limit), `scim` ({"baseUrl", "token"}, or None to stop pushing). A `scim` without `token`
    (or with the mask) keeps the stored token. Raises BadRequest naming a bad value.

    Side effects: the tenant's provider schedules follow a new time zone; a new or changed
    limit gives free seats to waiting students now; removing it forgets the seat rows; a new
    or re-pointed SCIM target gets a full reconcile, pushed once this is committed.
    """
    from sis_sync.scheduling import schedule_sync
    from sis_sync.scim.outbox import scim_queue_everything
    from sis_sync.seats import seats_allocate, seats_forget
    from sis_sync.tasks import enqueue_scim_push

    changed: dict[str, Any] = {}
    if timezone is not UNSET:
        tenant.timezone = _timezone(timezone)
        changed["timezone"] = tenant.timezone
    if seat_limit is not UNSET:
        tenant.seat_limit = _seat_limit(seat_limit)
        changed["seatLimit"] = tenant.seat_limit
    target = ScimTarget.objects.filter(tenant=tenant).first()
    repointed = False
    if scim is not UNSET and scim is not None:
        base_url, token = _scim(scim, target)
        repointed = target is None or target.base_url != base_url
        target = target or ScimTarget(tenant=tenant)
        target.base_url = base_url
        if token is not None:
            target.set_token(token)
        changed["scim"] = {"baseUrl": base_url, "tokenChanged": token is not None}
    with transaction.atomic():
        tenant.save()
        if "timezone" in changed:
            for provider in tenant.providers.all():
                schedule_sync(provider)
        if "seatLimit" in changed:
            if tenant.seat_limit is None:
                seats_forget(tenant=tenant)
            else:
                seats_allocate(tenant_id=tenant.pk)
        if scim is None:
            ScimTarget.objects.filter(tenant=tenant).delete()
            changed["scim"] = None
        elif scim is not UNSET:
            target.save()
            if repointed:
                scim_queue_everything(tenant_id=tenant.pk)
                enqueue_scim_push(tenant.pk)  # after the commit, on the workers
        audit_record("tenant.configured", actor=actor, target=tenant, details=changed)
    return tenant


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest("timezone must be an IANA time zone name, e.g. America/New_York")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"timezone {value!r} is not a known time zone (e.g. America/Chicago)"
        ) from None
    return value


def _seat_limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(
            f"seatLimit must be a whole number of seats (0 or more) or null, not {value!r}"
        )
    return value


def _scim(value: Any, stored: ScimTarget | None) -> tuple[str, str | None]:
    """The SCIM target's base URL, and its new token (None: keep the stored one)."""
    if not isinstance(value, dict):
        raise BadRequest('scim must be an object {"baseUrl", "token"} or null')
    unknown = set(value) - {"baseUrl", "token"}
    if unknown:
        raise BadRequest(f"scim has unknown fields: {', '.join(sorted(unknown))}")
    base_url = value.get("baseUrl")
    if not isinstance(base_url, str) or not base_url:
        raise BadRequest("scim.baseUrl is required (the SCIM service provider's base URL)")
    url = urlparse(base_url)
    schemes = ("https", "http") if settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS else ("https",)
    if url.scheme not in schemes or not url.hostname or url.query or url.fragment:
        raise BadRequest(f"scim.baseUrl must be an https:// URL, not {base_url!r}")
    try:
        check_host(url.hostname, url.port or 443)
    except AddressNotAllowed as exc:
        raise BadRequest(f"scim.baseUrl: {exc}") from None
    token = value.get("token")
    if token in (None, MASK):
        if stored is None:
            raise BadRequest("scim.token is required (the SCIM server's bearer token)")
        return base_url.rstrip("/"), None
    if not isinstance(token, str) or not token.strip():
        raise BadRequest("scim.token must be the SCIM server's bearer token")
    return base_url.rstrip("/"), token.strip()
