"""Provider config per type (SPEC §2): validation, secrets, masking.

Secrets are write-only: `masked` replaces them with "********" (and says `has<Name>`), and
`merged` keeps a stored secret when an update leaves it out.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from connectors.base import ConnectorError
from connectors.netcheck import AddressNotAllowed, check_host
from connectors.oneroster_csv.sftp import parse_host_keys
from connectors.registry import build_connector
from loader.context import LoadOptions, OptionsError
from sis_sync.errors import BadRequest
from sis_sync.models import ProviderType

MASK = "********"
SECRETS = {"clientSecret", "accessToken", "webhookSecret"}
SFTP_SECRETS = {"privateKey", "password", "privateKeyPassphrase"}

REQUIRED: dict[str, tuple[str, ...]] = {
    ProviderType.CLEVER: ("districtId",),
    ProviderType.CLASSLINK: ("clientId", "clientSecret", "baseUrl"),
    ProviderType.ONEROSTER_API: ("baseUrl", "clientId", "clientSecret"),
    ProviderType.ONEROSTER_CSV: (),
}


def _check_url(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise BadRequest(f"config.{name} must be a URL")
    try:
        url = urlparse(value)
        port = url.port  # ValueError when not a number from 0 to 65535
    except ValueError:
        raise BadRequest(f"config.{name} is not a valid URL: {value!r}") from None
    # Plain http only where private hosts are allowed: local servers in development and tests.
    schemes = ("https", "http") if settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS else ("https",)
    if url.scheme not in schemes or not url.hostname:
        raise BadRequest(f"config.{name} must be an https:// URL, not {value!r}")
    try:
        check_host(url.hostname, port or 443)
    except AddressNotAllowed as exc:
        raise BadRequest(f"config.{name}: {exc}") from None


# Fields that, when present, must be text (a list or a number there breaks a sync much later).
TEXT_FIELDS = {
    "districtId", "clientId", "clientSecret", "accessToken", "baseUrl", "tokenUrl", "scope",
    "tenantId", "authMethod", "signatureMethod", "remotePath", "webhookSecret",
}  # fmt: skip
SFTP_TEXT_FIELDS = {"host", "username", "hostKey", *SFTP_SECRETS}


def _check_text(config: dict[str, Any], fields: set[str], prefix: str) -> None:
    wrong = sorted(k for k in fields & set(config) if not isinstance(config[k], str | None))
    if wrong:
        raise BadRequest(f"{', '.join(prefix + k for k in wrong)} must be text")


def validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    """Checks a provider config; returns it, or raises BadRequest naming the problem."""
    if provider_type not in ProviderType.values:
        raise BadRequest(
            f"providerType must be one of {', '.join(ProviderType.values)}, not {provider_type!r}"
        )
    if not isinstance(config, dict):
        raise BadRequest("config must be a JSON object")
    _check_text(config, TEXT_FIELDS, "config.")
    if isinstance(config.get("sftp"), dict):
        _check_text(config["sftp"], SFTP_TEXT_FIELDS, "config.sftp.")
    missing = [k for k in REQUIRED[provider_type] if not config.get(k)]
    if provider_type == ProviderType.CLEVER and not (
        config.get("accessToken") or (config.get("clientId") and config.get("clientSecret"))
    ):
        missing.append("accessToken (or clientId and clientSecret)")
    if provider_type == ProviderType.ONEROSTER_API:
        method = config.get("authMethod", "oauth2")
        if method not in ("oauth2", "oauth1"):
            raise BadRequest("config.authMethod must be oauth2 or oauth1")
        if method == "oauth2" and not config.get("tokenUrl"):
            missing.append("tokenUrl")
    if provider_type == ProviderType.CLASSLINK:
        method = config.get("authMethod", "oauth1")
        if method not in ("oauth1", "proxy"):
            raise BadRequest("config.authMethod must be oauth1 or proxy")
        if method == "proxy" and config.get("accessToken"):
            missing = [m for m in missing if m != "clientSecret"]
    if missing:
        raise BadRequest(f"config is missing {', '.join(missing)}")
    for key in ("baseUrl", "tokenUrl"):
        if config.get(key):
            _check_url(key, config[key])
    if provider_type in (ProviderType.ONEROSTER_API, ProviderType.CLASSLINK):
        # The connector reads its own settings (pageSize, concurrency, …): building it checks
        # them without making a request.
        try:
            build_connector(provider_type, config, options={})
        except ConnectorError as exc:
            raise BadRequest(exc.message) from None
    _validate_webhook(config)
    sftp = config.get("sftp")
    if provider_type == ProviderType.ONEROSTER_CSV and sftp is not None:
        _validate_sftp(sftp)
        if not config.get("remotePath"):
            raise BadRequest("config is missing remotePath (where the bundles are on the server)")
    return config


def _validate_webhook(config: dict[str, Any]) -> None:
    """`webhookSecret` (a string of 16+ characters) and `webhookAllowIps` (CIDRs), SPEC §6."""
    secret = config.get("webhookSecret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
        raise BadRequest("config.webhookSecret must be a string of at least 16 characters")
    allow = config.get("webhookAllowIps")
    if allow is None:
        return
    if not isinstance(allow, list) or not all(isinstance(n, str) for n in allow):
        raise BadRequest('config.webhookAllowIps must be a list of CIDRs, e.g. ["203.0.113.0/24"]')
    for network in allow:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise BadRequest(
                f"config.webhookAllowIps: {network!r} is not an IP address or CIDR"
            ) from None


def _validate_sftp(sftp: Any) -> None:
    if not isinstance(sftp, dict):
        raise BadRequest("config.sftp must be an object")
    missing = [k for k in ("host", "username", "hostKey") if not sftp.get(k)]
    if not (sftp.get("privateKey") or sftp.get("password")):
        missing.append("privateKey or password")
    if missing:
        raise BadRequest(f"config.sftp is missing {', '.join(missing)}")
    try:
        parse_host_keys(sftp["hostKey"])
    except ValueError as exc:
        raise BadRequest(f"config.sftp.hostKey: {exc}") from None
    try:
        port = int(sftp.get("port", 22))
    except (TypeError, ValueError):
        port = 0
    if isinstance(sftp.get("port"), bool) or not 0 < port < 65536:
        raise BadRequest(f"config.sftp.port must be a port number, not {sftp.get('port')!r}")
    try:
        check_host(str(sftp["host"]), port)
    except AddressNotAllowed as exc:
        raise BadRequest(f"config.sftp.host: {exc}") from None


def validate_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise BadRequest("options must be a JSON object")
    try:
        LoadOptions.parse(options)
    except OptionsError as exc:
        raise BadRequest(f"options: {exc}") from None
    return options


def masked(config: dict[str, Any]) -> dict[str, Any]:
    """The config as a user may see it: every secret replaced by a mask and a has-flag."""
    shown = copy.deepcopy(config)
    shown.pop("bundlePath", None)
    for key in SECRETS & set(shown):
        shown[f"has{key[0].upper()}{key[1:]}"] = bool(shown[key])
        shown[key] = MASK
    sftp = shown.get("sftp")
    if isinstance(sftp, dict):
        for key in SFTP_SECRETS & set(sftp):
            sftp[f"has{key[0].upper()}{key[1:]}"] = bool(sftp[key])
            sftp[key] = MASK
    return shown


def merged(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """An update of a config: secrets left out (or sent back masked) keep their stored value."""
    result = copy.deepcopy(update)
    for key in SECRETS:
        if result.get(key) in (None, MASK) and stored.get(key):
            result[key] = stored[key]
    if isinstance(result.get("sftp"), dict) and isinstance(stored.get("sftp"), dict):
        for key in SFTP_SECRETS:
            if result["sftp"].get(key) in (None, MASK) and stored["sftp"].get(key):
                result["sftp"][key] = stored["sftp"][key]
    return result
