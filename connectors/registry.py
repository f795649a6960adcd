"""The one table of connectors: provider type -> connector class."""

from __future__ import annotations

from typing import Any

from connectors.base import Connector, ConnectorError
from connectors.classlink.connector import ClassLinkConnector
from connectors.clever.connector import CleverConnector
from connectors.oneroster_api.connector import OneRosterApiConnector
from connectors.oneroster_csv.connector import OneRosterCsvConnector

CONNECTORS: dict[str, type] = {
    "CLEVER": CleverConnector,
    "ONEROSTER_CSV": OneRosterCsvConnector,
    "ONEROSTER_API": OneRosterApiConnector,
    "CLASSLINK": ClassLinkConnector,
}


def build_connector(
    provider_type: str, config: dict[str, Any], *, options: dict[str, Any]
) -> Connector:
    try:
        cls = CONNECTORS[provider_type]
    except KeyError:
        raise ConnectorError(
            f"The {provider_type} connector is not available in this version of SIS Sync"
        ) from None
    return cls(config, options=options)
