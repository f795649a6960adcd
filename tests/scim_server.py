"""A real SCIM 2.0 service provider for tests: scim2-server's WSGI application, with bearer
token authentication and in-memory storage, served on loopback from a thread.

`stop()` and `start()` take it down and bring it back on the same port with the same
resources, as an outage would. Tests read what it holds over HTTP, as any SCIM client would.
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class ScimServer:
    def __init__(self, token: str) -> None:
        self.token = token
        config = load_default_service_provider_config()
        config.authentication_schemes = [
            *(config.authentication_schemes or []),
            BEARER_TOKEN_SCHEME,
        ]
        provider = ScimProvider.from_discovery(
            load_default_schemas().values(),
            load_default_resource_types().values(),
            config=config,
        )
        self.storage = InMemoryStorage()
        self.app = BearerTokenApplication(
            self.storage,
            provider,
            service=ScimService(provider, secret="tests"),
            bearer_tokens=[token],
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.requests: list[tuple[str, str]] = []
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def _recording(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.app(environ, start_response)

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1",
            self.port,
            self._recording,
            server_class=_Server,
            handler_class=_QuietHandler,
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def list(self, endpoint: str) -> list[dict[str, Any]]:
        """Every resource of /Users or /Groups, as the server shows it."""
        response = requests.get(
            f"{self.base_url}/{endpoint}",
            params={"count": 1000},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json().get("Resources", [])

    def by_external_id(self, endpoint: str) -> dict[str, dict[str, Any]]:
        return {r["externalId"]: r for r in self.list(endpoint)}
