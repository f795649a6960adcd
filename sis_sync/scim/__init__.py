"""The SCIM 2.0 push (SPEC §6): a tenant's roster changes, sent to its SCIM service provider.

- `outbox`: which entities a load changed (set-based, inside the load's transaction), kept
  until they are pushed; nothing is lost when the SCIM server is down.
- `push`: sends the outbox — people as /Users, classes as /Groups with their members — with
  retries and backoff, remembering the SCIM ids the server gives.
- `client`: the wire protocol, over connectors.http (address checks, timeouts, size limits).
"""
