"""Provider webhooks (SPEC §5, §6): `POST /webhooks/clever/{tenantId}` and
`POST /webhooks/classlink/{tenantId}`.

`service` checks a request (signature, timestamp, replay, IP allowlist) and turns an accepted
event into a delta sync of its provider, coalescing bursts; `views` are the HTTP face.
"""
