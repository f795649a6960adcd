"""The checks an uploaded bundle passes before it is kept (connectors.oneroster_csv.upload)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from connectors.base import ConnectorError
from connectors.oneroster_csv.upload import check_upload


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def refusal(path: Path, **limits: int) -> str:
    with pytest.raises(ConnectorError) as caught:
        check_upload(path, **limits)
    assert caught.value.permanent
    return caught.value.message


def test_it_accepts_a_real_bundle(tmp_path: Path, sample_bundle: Path) -> None:
    upload = zip_of(
        tmp_path / "bundle.zip", {p.name: p.read_bytes() for p in sample_bundle.iterdir()}
    )

    check_upload(upload)  # no exception


def test_it_accepts_a_bundle_zipped_inside_its_folder(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "b.zip", {"export/": b"", "export/users.csv": b"sourcedId\n"})

    check_upload(upload)


@pytest.mark.parametrize(
    "name", ["../x.csv", "export/../../x.csv", "/etc/x.csv", "..\\x.csv", "C:\\x.csv"]
)
def test_it_refuses_an_entry_that_would_land_outside_the_bundle(tmp_path: Path, name: str) -> None:
    upload = zip_of(tmp_path / "slip.zip", {"users.csv": b"sourcedId\n", name: b"owned"})

    assert refusal(upload) == (
        f"The zip holds {name!r}, a path outside the bundle; it is refused. "
        "Zip the CSV files themselves (or one folder holding them)"
    )


def test_it_refuses_a_symbolic_link(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("users.csv")
    link.create_system = 3  # Unix: the mode in external_attr counts
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    upload = tmp_path / "link.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr(link, "/etc/passwd")

    assert refusal(upload) == (
        "users.csv in the zip is a symbolic link; a bundle may hold only CSV files"
    )


def test_it_refuses_a_zip_bomb(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "bomb.zip", {"users.csv": b"\0" * 20_000_000})

    message = refusal(upload)

    assert message.startswith("users.csv in the zip expands ")
    assert message.endswith("real CSV files do not: it is refused as a zip bomb")


def test_it_refuses_entries_that_together_expand_too_far(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "wide.zip", {f"f{n}.csv": bytes(range(256)) * 40 for n in range(5)})

    assert refusal(upload, max_total_bytes=40_000) == (
        "The zip would expand to more than 0.0 MB; that is not a OneRoster bundle (a zip bomb?)"
    )


def test_it_refuses_a_file_that_is_not_a_zip(tmp_path: Path, sample_bundle: Path) -> None:
    upload = tmp_path / "users.zip"
    upload.write_bytes((sample_bundle / "users.csv").read_bytes())

    assert refusal(upload) == (
        "The upload is not a .zip file (or it is damaged): upload the OneRoster bundle as a "
        "zip of its CSV files"
    )


def test_it_refuses_an_upload_over_the_size_limit(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "big.zip", {"users.csv": os.urandom(5_000)})

    assert refusal(upload, max_bytes=1_000).startswith(
        "The upload is 0.0 MB; the most SIS Sync accepts is 0.0 MB."
    )


def test_it_refuses_too_many_entries(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "many.zip", {f"f{n}.csv": b"x" for n in range(30)})

    assert refusal(upload, max_members=20) == (
        "The zip has 30 entries; a OneRoster bundle has a dozen or so (at most 20 are accepted)"
    )


def test_it_refuses_a_password_protected_entry(tmp_path: Path) -> None:
    upload = zip_of(tmp_path / "locked.zip", {"users.csv": b"sourcedId\n"})
    # Set the "encrypted" flag an encrypting archiver sets (zipfile cannot encrypt), in the
    # local header (flags at byte 6) and the central directory entry (byte 8).
    data = bytearray(upload.read_bytes())
    data[data.find(b"PK\x03\x04") + 6] |= 0x1
    data[data.find(b"PK\x01\x02") + 8] |= 0x1
    upload.write_bytes(bytes(data))

    assert refusal(upload) == (
        "users.csv in the zip is password-protected: upload the bundle without a password"
    )


@pytest.mark.django_db
def test_it_keeps_a_checked_upload_and_syncs_it(
    tmp_path: Path, sample_bundle: Path, django_capture_on_commit_callbacks: object
) -> None:
    import shutil

    from sis_sync.errors import BadRequest
    from sis_sync.models import Person, RunStatus, SisSyncRun
    from sis_sync.providers import upload_provider_get_or_create
    from sis_sync.sync import sync_upload
    from sis_sync.tenants import tenant_get_or_create

    provider = upload_provider_get_or_create(tenant=tenant_get_or_create(slug="up"))
    archive = Path(shutil.make_archive(str(tmp_path / "bundle"), "zip", sample_bundle))

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        run = sync_upload(provider=provider, source=archive, triggered_by="admin")

    assert SisSyncRun.objects.get(pk=run.pk).status == RunStatus.SUCCESS  # in-process here
    assert Person.objects.count() == 650
    bomb = tmp_path / "evil.zip"
    with zipfile.ZipFile(bomb, "w") as evil:
        evil.writestr("../users.csv", "x")
    with pytest.raises(BadRequest):
        sync_upload(provider=provider, source=bomb)
    provider.refresh_from_db()
    assert provider.bundle_path.endswith("bundle.zip")
