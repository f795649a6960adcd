"""Roles, `create_api_user`, and the audit trail written by the domain functions."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from sis_sync.access import has_role, is_platform_admin, membership_set, visible_tenants
from sis_sync.errors import AlreadyRunning, BadRequest
from sis_sync.models import AdminRole, AuditEvent, RunStatus
from sis_sync.providers import (
    provider_create,
    provider_disable,
    provider_store_bundle,
    provider_update,
)
from sis_sync.runs import sync_cancel
from sis_sync.sync import sync_run_inline, sync_start
from sis_sync.tenants import tenant_get_or_create

pytestmark = pytest.mark.django_db


def test_district_admin_sees_only_their_tenant() -> None:
    north, south = tenant_get_or_create(slug="north"), tenant_get_or_create(slug="south")
    user = get_user_model().objects.create(username="dana")
    assert not has_role(user) and list(visible_tenants(user)) == []
    membership_set(user=user, role=AdminRole.DISTRICT_ADMIN, tenant=north)
    assert has_role(user) and not is_platform_admin(user)
    assert list(visible_tenants(user)) == [north]
    boss = get_user_model().objects.create(username="pat")
    membership_set(user=boss, role=AdminRole.PLATFORM_ADMIN, tenant=south)
    assert is_platform_admin(boss) and set(visible_tenants(boss)) == {north, south}


def test_a_district_admin_needs_a_tenant() -> None:
    user = get_user_model().objects.create(username="dana")
    with pytest.raises(BadRequest, match="needs a tenant"):
        membership_set(user=user, role=AdminRole.DISTRICT_ADMIN, tenant=None)


def test_create_api_user_prints_a_working_token_last() -> None:
    tenant_get_or_create(slug="north")
    out = io.StringIO()
    call_command(
        "create_api_user", "dana", "--role", "DISTRICT_ADMIN", "--tenant", "north", stdout=out
    )
    token = out.getvalue().strip().splitlines()[-1]
    user = Token.objects.get(key=token).user
    assert user.username == "dana" and not user.has_usable_password() and not user.is_staff
    assert [t.slug for t in visible_tenants(user)] == ["north"]
    again = io.StringIO()
    call_command(
        "create_api_user", "dana", "--role", "DISTRICT_ADMIN", "--tenant", "north",
        "--password", "s3cret-Pass", stdout=again,
    )  # fmt: skip
    user.refresh_from_db()
    assert again.getvalue().strip().splitlines()[-1] == token
    assert user.check_password("s3cret-Pass") and user.is_staff


def test_create_api_user_refuses_an_unknown_tenant() -> None:
    with pytest.raises(CommandError, match="No tenant 'nowhere'") as caught:
        call_command("create_api_user", "x", "--role", "DISTRICT_ADMIN", "--tenant", "nowhere")
    assert caught.value.returncode == 2


def test_provider_changes_and_syncs_are_audited(sample_bundle) -> None:
    tenant = tenant_get_or_create(slug="north")
    provider = provider_create(
        tenant=tenant,
        provider_type="ONEROSTER_CSV",
        name="Files",
        config={},
        actor="dana",
    )
    provider_store_bundle(provider=provider, source=sample_bundle)
    provider_update(provider=provider, name="Files 2", sync_schedule="daily", actor="dana")
    run = sync_start(provider=provider, is_manual=True, triggered_by="dana")
    with pytest.raises(AlreadyRunning):
        sync_start(provider=provider, is_manual=True, triggered_by="sam")
    cancelled = sync_cancel(provider=provider, cancelled_by="dana")
    assert cancelled.pk == run.pk
    second = sync_start(provider=provider, is_manual=True, triggered_by="dana")
    assert sync_run_inline(run_id=second.pk).status == RunStatus.SUCCESS
    provider_disable(provider=provider, actor="dana")

    rows = list(
        AuditEvent.objects.filter(tenant=tenant)
        .order_by("id")
        .values_list("actor", "action", "outcome", "target_type")
    )
    assert rows == [
        ("dana", "provider.created", "success", "SisProvider"),
        ("dana", "provider.updated", "success", "SisProvider"),
        ("dana", "sync.started", "success", "SisSyncRun"),
        ("sam", "sync.started", "refused", "SisProvider"),
        ("system", "sync.finished", "cancelled", "SisSyncRun"),
        ("dana", "sync.cancelled", "success", "SisSyncRun"),
        ("dana", "sync.started", "success", "SisSyncRun"),
        ("system", "sync.finished", "success", "SisSyncRun"),
        ("dana", "provider.disabled", "success", "SisProvider"),
    ]
    update = AuditEvent.objects.get(action="provider.updated")
    assert update.details == {"changed": ["name", "syncSchedule"]}
