"""The provider endpoints: create, list, read, change, remove; validation and the error shape."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from sis_sync.models import AuditEvent, SisProvider
from tests.api_helpers import (
    CLEVER_SECRET,
    CLEVER_TOKEN,
    ONEROSTER_SECRET,
    assert_error,
)


def _create(client, tenant="north", **fields):
    body = {
        "tenantId": tenant,
        "providerType": "ONEROSTER_CSV",
        "name": "Nightly files",
        "config": {},
        **fields,
    }
    return client.post("/api/v1/providers", body, format="json")


def test_it_creates_a_provider_and_never_returns_its_secrets(
    north_admin, secret_configs, public_dns
) -> None:
    response = _create(
        north_admin,
        providerType="CLEVER",
        name="Clever",
        config=secret_configs["CLEVER"],
        syncSchedule="weekdays",
        options={"deletionThreshold": 0.2},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenantId"] == "north" and body["providerType"] == "CLEVER"
    assert body["syncSchedule"] == "0 6 * * 1-5" and body["enabled"] is True
    assert body["options"] == {"deletionThreshold": 0.2}
    assert body["lastSyncAt"] is None and body["lastStatus"] is None
    assert body["config"]["clientSecret"] == "********" and body["config"]["hasClientSecret"]
    assert body["config"]["accessToken"] == "********" and body["config"]["hasAccessToken"]
    assert body["config"]["districtId"] == "d-1"
    assert CLEVER_SECRET not in response.content.decode()

    provider = SisProvider.objects.get(pk=body["id"])
    assert provider.config["clientSecret"] == CLEVER_SECRET  # stored, encrypted
    assert CLEVER_SECRET not in provider.config_encrypted
    assert CLEVER_TOKEN not in provider.config_encrypted
    task = PeriodicTask.objects.get(kwargs__contains=str(provider.pk))
    assert task.enabled and task.crontab.minute == "0" and task.crontab.hour == "6"
    event = AuditEvent.objects.get(action="provider.created")
    assert (event.actor, event.tenant.slug, event.target_id) == ("nora", "north", str(body["id"]))


def test_it_lists_reads_and_finds_providers_by_tenant(north_admin, platform_admin, south) -> None:
    first = _create(north_admin, name="B files").json()
    _create(north_admin, name="A files")
    _create(platform_admin, tenant="south", name="South files")

    listed = north_admin.get("/api/v1/tenants/north/providers").json()
    assert listed["count"] == 2 and [p["name"] for p in listed["results"]] == ["A files", "B files"]
    page = north_admin.get("/api/v1/tenants/north/providers?limit=1&offset=1").json()
    assert page["count"] == 2 and [p["name"] for p in page["results"]] == ["B files"]
    assert page["previous"] is not None and page["next"] is None

    read = north_admin.get(f"/api/v1/providers/{first['id']}").json()
    assert read == first
    same = north_admin.get(f"/api/v1/tenants/north/providers/{first['id']}").json()
    assert same == first
    assert_error(north_admin.get(f"/api/v1/tenants/south/providers/{first['id']}"), 404)


def test_patch_keeps_a_secret_left_out_and_the_schedule_in_step(
    north_admin, secret_configs, public_dns
) -> None:
    config = secret_configs["ONEROSTER_API"]
    created = _create(
        north_admin, providerType="ONEROSTER_API", config=config, syncSchedule="daily"
    ).json()
    url = f"/api/v1/providers/{created['id']}"
    without_secret = {k: v for k, v in config.items() if k != "clientSecret"}
    response = north_admin.patch(
        url, {"config": {**without_secret, "clientId": "or-2"}, "syncSchedule": "hourly"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["config"]["clientId"] == "or-2"
    assert response.json()["config"]["hasClientSecret"] is True
    provider = SisProvider.objects.get(pk=created["id"])
    assert provider.config["clientSecret"] == ONEROSTER_SECRET
    assert PeriodicTask.objects.get(kwargs__contains=str(provider.pk)).crontab.minute == "0"
    assert PeriodicTask.objects.get(kwargs__contains=str(provider.pk)).crontab.hour == "*"

    masked_back = north_admin.patch(url, {"config": response.json()["config"]}, format="json")
    assert masked_back.status_code == 200
    assert SisProvider.objects.get(pk=created["id"]).config["clientSecret"] == ONEROSTER_SECRET

    manual = north_admin.patch(url, {"syncSchedule": None}, format="json").json()
    assert manual["syncSchedule"] is None
    assert not PeriodicTask.objects.filter(kwargs__contains=str(provider.pk)).exists()
    assert AuditEvent.objects.filter(action="provider.updated").count() == 3


def test_seed_003_put_changes_a_provider_like_patch(north_admin) -> None:
    created = _create(north_admin).json()
    response = north_admin.put(
        f"/api/v1/tenants/north/providers/{created['id']}", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    made = north_admin.post(
        "/api/v1/tenants/north/providers",
        {"providerType": "ONEROSTER_CSV", "name": "Second", "config": {}},
        format="json",
    )
    assert made.status_code == 201 and made.json()["tenantId"] == "north"


def test_delete_disables_and_keeps_the_provider(north_admin) -> None:
    created = _create(north_admin, syncSchedule="daily").json()
    response = north_admin.delete(f"/api/v1/providers/{created['id']}")
    assert response.status_code == 200 and response.json()["enabled"] is False
    provider = SisProvider.objects.get(pk=created["id"])
    assert not provider.enabled
    assert not PeriodicTask.objects.filter(kwargs__contains=str(provider.pk), enabled=True).exists()
    refused = north_admin.post(f"/api/v1/providers/{created['id']}/sync", {}, format="json")
    assert assert_error(refused, 400, "bad_request")["message"] == "Provider disabled"
    assert AuditEvent.objects.filter(action="provider.disabled", outcome="success").count() == 1
    assert AuditEvent.objects.filter(action="sync.started", outcome="refused").count() == 1


def test_it_refuses_bad_providers_with_the_error_shape(north_admin, public_dns) -> None:
    missing = north_admin.post("/api/v1/providers", {"tenantId": "north"}, format="json")
    details = assert_error(missing, 400, "invalid")["details"]
    assert set(details) == {"providerType", "name", "config"}

    typo = _create(north_admin, schedule="daily")
    assert assert_error(typo, 400, "invalid")["details"] == {"schedule": ["Unknown field."]}

    clever = _create(north_admin, providerType="CLEVER", config={"districtId": "d"})
    assert "accessToken" in assert_error(clever, 400, "bad_request")["message"]

    internal = _create(
        north_admin,
        providerType="ONEROSTER_API",
        config={"baseUrl": "https://127.0.0.1/ims", "clientId": "x", "clientSecret": "y" * 20,
                "tokenUrl": "https://sis.example.com/token"},
    )  # fmt: skip
    assert "127.0.0.1" in assert_error(internal, 400, "bad_request")["message"]

    no_host_key = _create(
        north_admin,
        config={"sftp": {"host": "sftp.example.com", "username": "u", "password": "p" * 20},
                "remotePath": "/x"},
    )  # fmt: skip
    assert "hostKey" in assert_error(no_host_key, 400, "bad_request")["message"]

    cron = _create(north_admin, syncSchedule="every tuesday")
    assert "syncSchedule" in assert_error(cron, 400, "bad_request")["message"]

    options = _create(north_admin, options={"roles": ["parent"]})
    assert "roles" in assert_error(options, 400, "bad_request")["message"]

    _create(north_admin)
    duplicate = _create(north_admin)
    assert "already has a provider" in assert_error(duplicate, 400)["message"]

    not_json = north_admin.generic(
        "POST", "/api/v1/providers", "{not json", content_type="application/json"
    )
    assert_error(not_json, 400, "parse_error")
    a_list = north_admin.post("/api/v1/providers", [1, 2], format="json")
    assert "nonFieldErrors" in assert_error(a_list, 400, "invalid")["details"]
    nul = _create(north_admin, options={"x": "a\x00b"})
    assert_error(nul, 400, "invalid")

    refusals = AuditEvent.objects.filter(action="provider.created", outcome="refused")
    assert refusals.count() == 6 and {e.tenant.slug for e in refusals} == {"north"}


def test_unknown_paths_and_methods_answer_in_the_error_shape(north_admin) -> None:
    assert_error(north_admin.get("/api/v1/nothing/here"), 404, "not_found")
    assert_error(north_admin.post("/api/v2/providers"), 404, "not_found")
    assert_error(north_admin.get("/api/v1/providers/1/%0Async"), 404, "not_found")
    assert_error(north_admin.get("/api/v1/providers/12345"), 404, "not_found")
    assert_error(north_admin.get("/api/v1/tenants/nowhere/providers"), 404, "not_found")
    assert_error(north_admin.get("/api/v1/tenants/bad%00slug/providers"), 404, "not_found")
    assert_error(north_admin.get("/api/v1/providers/99999999999999999999999"), 404)
    assert_error(north_admin.put("/api/v1/providers/1", {}, format="json"), 405)
    assert_error(north_admin.get("/api/v1/providers"), 405, "method_not_allowed")
    response = north_admin.post("/api/v1/providers", "x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
API = {"clientId": "x", "clientSecret": "y", "tokenUrl": "https://sis.example.com/t"}
NASTY_CONFIGS = [
    ("ONEROSTER_API", {**API, "baseUrl": "https://[abc"}, "not a valid URL"),
    ("ONEROSTER_API", {**API, "baseUrl": "https://sis.example.com:99999/x"}, "not a valid URL"),
    ("ONEROSTER_API", {**API, "baseUrl": 5}, "must be text"),
    ("ONEROSTER_API", {**API, "baseUrl": "https://sis.example.com", "pageSize": "x"}, "pageSize"),
    ("CLASSLINK", {**API, "baseUrl": "https://sis.example.com", "authMethod": {}}, "authMethod"),
    ("CLEVER", {"districtId": ["d"], "accessToken": "t"}, "districtId must be text"),
    ("ONEROSTER_CSV", {"sftp": {"host": "sftp.example.com", "port": "abc", "username": "u",
                                "password": "p", "hostKey": KEY}, "remotePath": "/x"}, "port"),
    ("ONEROSTER_CSV", {"sftp": {"host": "sftp.example.com", "port": 70000, "username": "u",
                                "password": "p", "hostKey": KEY}, "remotePath": "/x"}, "port"),
    ("ONEROSTER_CSV", {"sftp": {"host": "sftp.example.com", "username": "u", "password": "p",
                                "hostKey": KEY}, "remotePath": ["/x"]}, "remotePath"),
    ("ONEROSTER_CSV", {"sftp": {"host": ["h"], "username": "u", "password": "p",
                                "hostKey": KEY}, "remotePath": "/x"}, "host"),
]  # fmt: skip
NASTY_OPTIONS = [
    {"deletionThreshold": {"users": "x"}},
    {"deletionThreshold": 5},
    {"updateThreshold": {"pets": 0.1}},
    {"schoolFilter": [1, 2]},
    {"createUsers": "yes"},
    {"includeContacts": "yes"},
    {"includeContacts": 1},
    {"roles": ["student", "guardian"]},
    {"roles": ["contact"]},  # contacts without includeContacts: nothing would sync
]


def test_clever_contacts_are_an_option_and_a_role(north_admin, secret_configs, public_dns):
    options = {"includeContacts": True, "roles": ["student", "contact"]}
    response = _create(
        north_admin, providerType="CLEVER", config=secret_configs["CLEVER"], options=options
    )

    assert response.status_code == 201, response.content
    assert response.json()["options"] == options
    refused = _create(north_admin, name="Other", options={"includeContacts": "true"})
    assert assert_error(refused, 400, "bad_request")["message"] == (
        "options: includeContacts must be true or false"
    )


@pytest.mark.parametrize(("provider_type", "config", "says"), NASTY_CONFIGS)
def test_odd_configs_are_400_never_500(north_admin, public_dns, provider_type, config, says):
    response = _create(north_admin, providerType=provider_type, config=config)
    assert says in assert_error(response, 400, "bad_request")["message"]


@pytest.mark.parametrize("options", NASTY_OPTIONS)
def test_odd_options_are_400_never_500(north_admin, options) -> None:
    assert "options" in assert_error(_create(north_admin, options=options), 400)["message"]
