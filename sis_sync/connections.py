"""The connection test: credentials and reachability, no data changed."""

from __future__ import annotations

from typing import NamedTuple

from connectors.base import ConnectorError
from connectors.registry import build_connector
from sis_sync.models import SisProvider
from sis_sync.providers import connector_config


class ConnectionResult(NamedTuple):
    success: bool
    message: str


def provider_test_connection(*, provider: SisProvider) -> ConnectionResult:
    try:
        connector = build_connector(
            provider.provider_type, connector_config(provider), options=provider.options
        )
        return ConnectionResult(True, connector.test_connection())
    except ConnectorError as exc:
        return ConnectionResult(False, exc.message)
