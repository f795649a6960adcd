"""The faces' own protections: the admin's actions need a CSRF token; the API is throttled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from sis_sync.access import membership_set
from sis_sync.models import AdminRole, SisSyncRun
from sis_sync.providers import provider_store_bundle, upload_provider_get_or_create
from sis_sync.tenants import tenant_get_or_create

pytestmark = pytest.mark.django_db


def test_an_admin_action_without_the_csrf_token_is_refused_and_starts_nothing(
    sample_bundle: Path,
) -> None:
    tenant = tenant_get_or_create(slug="north")
    provider = upload_provider_get_or_create(tenant=tenant)
    provider_store_bundle(provider=provider, source=sample_bundle)
    user = get_user_model().objects.create_user("dana", password="x-Long-Pass-1", is_staff=True)
    membership_set(user=user, role=AdminRole.DISTRICT_ADMIN, tenant=tenant)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    sync_url = reverse("admin:sis_sync_sisprovider_sync", args=[provider.pk])

    forged = browser.post(sync_url, {})  # e.g. a form on another site, riding the session

    assert forged.status_code == 403
    assert not SisSyncRun.objects.exists()
    page = browser.get(reverse("admin:sis_sync_sisprovider_change", args=[provider.pk]))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    real = browser.post(sync_url, {"csrfmiddlewaretoken": token.decode()})
    assert real.status_code == 302
    assert SisSyncRun.objects.filter(provider=provider, triggered_by="dana").count() == 1


def test_the_csrf_middleware_is_on_in_every_configuration(settings) -> None:
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
