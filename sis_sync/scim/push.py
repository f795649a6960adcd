"""Pushing a tenant's SCIM outbox to its SCIM 2.0 service provider.

People go first (as /Users), then classes (as /Groups, whose members are the people's SCIM
ids). Per entity, by its state now and what we remember of it:
- a person never pushed: POST /Users (a 409 means the server already has our externalId:
  its id is looked up and adopted, then PUT); a known one: PUT /Users/{id}; a deactivated
  one: PATCH active=false; a resource the server lost (404) is created again;
- a class: POST or PUT /Groups with its active members; a deactivated class: DELETE.
`externalId` is always our id. A failure is retried with backoff (30 s doubling, at most an
hour); the server being down (connection refused, timeouts, 5xx) or refusing our token stops
the pass, leaving everything pending; rows refused with another 4xx MAX_ATTEMPTS times become
`failed` (shown per run; `scim_reconcile` pushes them again). Transient failures never give up.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from sis_sync import locks
from sis_sync.models import (
    Classroom,
    Enrollment,
    Person,
    ScimChange,
    ScimChangeStatus,
    ScimLink,
    ScimResource,
    ScimTarget,
    SisSyncRun,
)
from sis_sync.scim.client import GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA, ScimClient, ScimError
from sis_sync.scim.outbox import scim_run_summary

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 200
LOCK_TTL = 600.0
MEMBER_WAITS = 3  # passes a class waits for members whose push failed, before going without
ENDPOINT = {ScimResource.USER: "Users", ScimResource.GROUP: "Groups"}


class _MembersMissing(ScimError):
    """Some of a class's members are not in the SCIM server yet: retry the class later."""


class _Stop(Exception):  # noqa: N818 - a signal
    pass


@dataclass
class PushResult:
    pushed: int = 0
    failed: int = 0
    stopped: str = ""  # why the pass ended early, if it did
    runs: set[int] = field(default_factory=set)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def user_resource(person: Person) -> dict[str, Any]:
    name = {"givenName": person.given_name, "familyName": person.family_name}
    if person.middle_name:
        name["middleName"] = person.middle_name
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "externalId": str(person.pk),
        "userName": person.username or person.email or f"sis-{person.pk}",
        "name": name,
        "displayName": f"{person.given_name} {person.family_name}".strip(),
        "userType": person.role,
        "active": bool(person.is_active and person.enabled),
    }
    if person.email:
        body["emails"] = [{"value": person.email, "type": "work", "primary": True}]
    return body


def group_resource(classroom: Classroom, members: list[str]) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "externalId": str(classroom.pk),
        "displayName": classroom.title,
        "members": [{"value": scim_id, "type": "User"} for scim_id in members],
    }


def scim_push(*, tenant_id: int, force: bool = False) -> PushResult:
    """Pushes the tenant's pending changes; `force` ignores the backoff (after a new load).

    One push per tenant at a time (a lock); a second caller returns at once, noting why.
    """
    target = ScimTarget.objects.filter(tenant_id=tenant_id).first()
    if target is None:
        return PushResult()
    store, key, token = locks.store(), f"{locks.PREFIX}:scim:{tenant_id}", uuid.uuid4().hex
    if not store.lock_acquire(key, token, LOCK_TTL):
        return PushResult(stopped="another push of this tenant is running")
    try:
        return _Pusher(target, force, renew=lambda: store.lock_renew(key, token, LOCK_TTL)).run()
    finally:
        store.lock_release(key, token)


def scim_tenants_due() -> list[int]:
    """Tenants with pending changes whose backoff has passed (for the periodic retry)."""
    return list(
        ScimChange.objects.filter(
            status=ScimChangeStatus.PENDING, next_attempt_at__lte=timezone.now()
        )
        .values_list("tenant_id", flat=True)
        .distinct()
    )


class _Pusher:
    def __init__(self, target: ScimTarget, force: bool, renew: Callable[[], bool]) -> None:
        self.tenant_id = target.tenant_id
        self.token = target.token
        self.client = ScimClient(base_url=target.base_url, token=self.token)
        self.force = force
        self.renew = renew
        self.result = PushResult()
        self.new_users: list[int] = []  # people the server has now and did not before

    def run(self) -> PushResult:
        try:
            self._push_all(ScimResource.USER)
            self._regroup_new_users()
            self._push_all(ScimResource.GROUP)
        except _Stop as stop:
            self.result.stopped = str(stop)
            log.warning("SCIM push of tenant %s stopped: %s", self.tenant_id, stop)
        finally:
            _record_on_runs(self.result.runs)
        return self.result

    def _regroup_new_users(self) -> None:
        """Classes already on the server that a newly created person belongs to were pushed
        without them (their push had failed): queue those classes again."""
        now = timezone.now()
        for start in range(0, len(self.new_users), 1000):
            people = self.new_users[start : start + 1000]
            classes = set(
                Enrollment.objects.filter(person_id__in=people, is_active=True).values_list(
                    "classroom_id", flat=True
                )
            )
            linked = ScimLink.objects.filter(
                tenant_id=self.tenant_id, resource=ScimResource.GROUP, entity_id__in=classes
            ).values_list("entity_id", flat=True)
            ScimChange.objects.bulk_create(
                ScimChange(
                    tenant_id=self.tenant_id,
                    resource=ScimResource.GROUP,
                    entity_id=class_id,
                    next_attempt_at=now,
                    created_at=now,
                )
                for class_id in linked
            )

    def _rows(self, resource: str, entity_ids: Any = None) -> Any:
        rows = ScimChange.objects.filter(tenant_id=self.tenant_id, resource=resource)
        return rows if entity_ids is None else rows.filter(entity_id__in=entity_ids)

    def _due(self, resource: str, after: int) -> list[dict[str, Any]]:
        rows = self._rows(resource).filter(status=ScimChangeStatus.PENDING, entity_id__gt=after)
        if not self.force:
            rows = rows.filter(next_attempt_at__lte=timezone.now())
        return list(
            rows.values("entity_id")
            .annotate(top=Max("id"), attempts=Max("attempts"))
            .order_by("entity_id")[:BATCH]
        )

    def _push_all(self, resource: str) -> None:
        after = 0
        while batch := self._due(resource, after):
            self.renew()
            ids = [row["entity_id"] for row in batch]
            self.result.runs.update(
                r for r in self._rows(resource, ids).values_list("run_id", flat=True) if r
            )
            links = dict(
                ScimLink.objects.filter(
                    tenant_id=self.tenant_id, resource=resource, entity_id__in=ids
                ).values_list("entity_id", "scim_id")
            )
            model = Person if resource == ScimResource.USER else Classroom
            entities = model.objects.filter(tenant_id=self.tenant_id).in_bulk(ids)
            for row in batch:
                entity_id = row["entity_id"]
                try:
                    if resource == ScimResource.USER:
                        self._push_user(entities.get(entity_id), links.get(entity_id))
                    else:
                        self._push_group(entities.get(entity_id), links.get(entity_id), row)
                except ScimError as exc:
                    self._failed(resource, row, exc)
                    if not exc.permanent and not isinstance(exc, _MembersMissing):
                        raise _Stop(self._scrub(exc.message)) from None
                    if exc.status in (401, 403):
                        raise _Stop(self._scrub(exc.message)) from None
                else:
                    self._done(resource, row)
            after = ids[-1]

    def _push_user(self, person: Person | None, scim_id: str | None) -> None:
        if person is None:
            return
        if not person.is_active:
            if scim_id:
                patch = {
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                }
                self._tolerating_404(ScimResource.USER, person.pk, "PATCH", scim_id, patch)
            return  # never pushed and gone: nothing to tell the server
        self._upsert(ScimResource.USER, person.pk, scim_id, user_resource(person))

    def _push_group(
        self, classroom: Classroom | None, scim_id: str | None, row: dict[str, Any]
    ) -> None:
        if classroom is None or not classroom.is_active:
            if scim_id:
                self._tolerating_404(ScimResource.GROUP, row["entity_id"], "DELETE", scim_id)
                self._unlink(ScimResource.GROUP, row["entity_id"])
            return
        people = set(
            Enrollment.objects.filter(
                classroom_id=classroom.pk, is_active=True, person__is_active=True
            ).values_list("person_id", flat=True)
        )
        linked = dict(
            ScimLink.objects.filter(
                tenant_id=self.tenant_id, resource=ScimResource.USER, entity_id__in=people
            ).values_list("entity_id", "scim_id")
        )
        missing = len(people - set(linked))
        if missing and row["attempts"] < MEMBER_WAITS:
            raise _MembersMissing(
                f"{missing} of the class's members are not in the SCIM server yet",
                permanent=False,
            )
        body = group_resource(classroom, sorted(linked.values()))
        self._upsert(ScimResource.GROUP, classroom.pk, scim_id, body)

    def _upsert(
        self, resource: str, entity_id: int, scim_id: str | None, body: dict[str, Any]
    ) -> None:
        endpoint = ENDPOINT[resource]
        if scim_id:
            try:
                self.client.request("PUT", f"/{endpoint}/{scim_id}", body)
                return
            except ScimError as exc:
                if exc.status != 404:
                    raise
                self._unlink(resource, entity_id)  # the server lost it: create it again
        try:
            created = self.client.request("POST", f"/{endpoint}", body)
            scim_id = str((created or {}).get("id") or "")
            if not scim_id:
                raise ScimError(
                    f"the SCIM server created a {resource} without an id", permanent=True
                )
        except ScimError as exc:
            if exc.status != 409:
                raise
            scim_id = self.client.find_by_external_id(endpoint, str(entity_id))
            if scim_id is None:
                raise
            self.client.request("PUT", f"/{endpoint}/{scim_id}", body)
        ScimLink.objects.update_or_create(
            tenant_id=self.tenant_id,
            resource=resource,
            entity_id=entity_id,
            defaults={"scim_id": scim_id},
        )
        if resource == ScimResource.USER:
            self.new_users.append(entity_id)

    def _tolerating_404(
        self,
        resource: str,
        entity_id: int,
        method: str,
        scim_id: str,
        body: dict[str, Any] | None = None,
    ) -> None:
        try:
            self.client.request(method, f"/{ENDPOINT[resource]}/{scim_id}", body)
        except ScimError as exc:
            if exc.status != 404:
                raise
            self._unlink(resource, entity_id)

    def _unlink(self, resource: str, entity_id: int) -> None:
        ScimLink.objects.filter(
            tenant_id=self.tenant_id, resource=resource, entity_id=entity_id
        ).delete()

    def _done(self, resource: str, row: dict[str, Any]) -> None:
        # Rows up to `top` were read before this push: their change went out. A row that
        # arrived meanwhile stays pending and is pushed again. Older failed rows are covered.
        self._rows(resource, [row["entity_id"]]).filter(
            id__lte=row["top"], status__in=(ScimChangeStatus.PENDING, ScimChangeStatus.FAILED)
        ).update(status=ScimChangeStatus.DONE, done_at=timezone.now(), last_error="")
        self.result.pushed += 1

    def _failed(self, resource: str, row: dict[str, Any], exc: ScimError) -> None:
        attempts = row["attempts"] + 1
        rows = self._rows(resource, [row["entity_id"]]).filter(
            id__lte=row["top"], status=ScimChangeStatus.PENDING
        )
        # A class waiting for its members is due again at the next pass (after the people).
        delay = dt.timedelta(0) if isinstance(exc, _MembersMissing) else backoff(attempts)
        rows.update(
            attempts=F("attempts") + 1,
            next_attempt_at=timezone.now() + delay,
            last_error=self._scrub(exc.message)[:2000],
        )
        if exc.permanent and exc.status not in (401, 403) and attempts >= MAX_ATTEMPTS:
            rows.update(status=ScimChangeStatus.FAILED)
        self.result.failed += 1

    def _scrub(self, message: str) -> str:
        return message.replace(self.token, "********") if self.token else message


def _record_on_runs(run_ids: set[int]) -> None:
    """Shows each run how its SCIM push stands: stats.scim = {queued, pushed, pending, failed}."""
    for run_id in run_ids:
        summary = scim_run_summary(run_id=run_id)
        with transaction.atomic():
            run = SisSyncRun.objects.select_for_update().filter(pk=run_id).first()
            if run is not None and summary is not None:
                run.stats = {**(run.stats or {}), "scim": summary}
                run.save(update_fields=["stats"])
