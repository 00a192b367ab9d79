"""Request ids the API can recognise as its own: a random half and an HMAC tag of it and the
user, so ``/feedback`` refuses an id it never issued, or one issued for another user, without
storing anything (any worker or instance holding the key can tell).

An id is 32 hex digits, as a UUID's: 16 random, then the first 16 of
``HMAC-SHA256(key, "<random>:<user id>")``. The key is ``serving.request_id_key``; unset, each
process draws its own at start, and then only the process that issued an id accepts feedback
for it (``make serve`` and the API image draw one per start for all their workers; several
instances need it set, ``terraform/`` passes it)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

log = logging.getLogger("serving.request_ids")
TAG_HEX = 16


class RequestIds:
    def __init__(self, key: str):
        if not key:
            log.warning(
                "RECSYS_REQUEST_ID_KEY is not set: feedback is accepted only for request ids this process "
                "issued; set it when several workers or instances serve"
            )
        self.key = key.encode() if key else secrets.token_bytes(32)

    def _tag(self, nonce: str, user_id: str) -> str:
        digest = hmac.new(self.key, f"{nonce}:{user_id}".encode(), hashlib.sha256).hexdigest()
        return digest[:TAG_HEX]

    def issue(self, user_id: str) -> str:
        """A new id for a request of ``user_id``."""
        nonce = secrets.token_hex(8)
        return nonce + self._tag(nonce, user_id)

    def issued(self, request_id: str, user_id: str) -> bool:
        """Whether this key issued ``request_id`` for ``user_id``."""
        nonce, tag = request_id[:-TAG_HEX], request_id[-TAG_HEX:]
        return len(nonce) == 16 and hmac.compare_digest(tag.encode(), self._tag(nonce, user_id).encode())
