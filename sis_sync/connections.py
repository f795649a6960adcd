"""The connection test: credentials and reachability, no data changed."""

from __future__ import annotations

from typing import NamedTuple

from connectors.base import ConnectorError
from connectors.registry import build_connector
from sis_sync.audit import FAILURE, SUCCESS, audit_record
from sis_sync.models import SisProvider
from sis_sync.providers import connector_config


class ConnectionResult(NamedTuple):
    success: bool
    message: str


def provider_test_connection(*, provider: SisProvider, actor: str = "system") -> ConnectionResult:
    try:
        connector = build_connector(
            provider.provider_type, connector_config(provider), options=provider.options
        )
        result = ConnectionResult(True, connector.test_connection())
    except ConnectorError as exc:
        result = ConnectionResult(False, exc.message)
    audit_record(
        "provider.tested",
        actor=actor,
        target=provider,
        outcome=SUCCESS if result.success else FAILURE,
        message=result.message,
    )
    return result
