"""`?limit=20&offset=0` on every list; the answer says how many there are in all (`count`)."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class LimitOffset(LimitOffsetPagination):
    default_limit = 20
    max_limit = 500
