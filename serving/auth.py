"""Bearer tokens for every route but the probes and the page's files: one before_request hook for all protocols.

    require_tokens(app)   # create_app does it when TOKENS_FILE (FASHION_SOFTMAX_TOKENS_FILE) names a token file

The file holds SHA-256 hashes only (serving/tokens.py); it is looked at (stat) at most once a second and read
again when it changed, so adding or removing a token needs no restart. A missing or wrong token gets 401 with
`WWW-Authenticate: Bearer` and the JSON error body of the route's protocol. Tokens never leave this module:
not in logs, metrics, error bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path

from flask import Flask, request

from serving import tokens
from serving.errors import ServiceError

log = logging.getLogger(__name__)

# Open without a token, by the URL rule that matched (a path no rule matches is not open): the probes (a kubelet
# or Docker has no token), the page's own files and the API's documents (a person needs them to be asked for a
# token). serving/openapi.yaml marks the same operations `security: []`.
OPEN_RULES = frozenset({"/health", "/ready", "/v2/health/live", "/v2/health/ready",
                        "/", "/static/<name>", "/docs", "/docs/<name>", "/openapi.json"})  # fmt: skip
CHECK_EVERY_S = 1.0  # how stale the token set may be after the file changes
REALM = 'Bearer realm="fashion-softmax"'
CLIENT_KEY = "fashion_softmax.client"  # the WSGI environ's key for the name of the token a request came with
FileState = tuple[int, int, int] | None  # (inode, mtime ns, size) of the token file; None: it cannot be read


class Unauthorized(ServiceError):
    """401 in the route's error form, with the RFC 6750 challenge in its WWW-Authenticate header."""

    def __init__(self, message: str, challenge: str):
        super().__init__("unauthorized", message, headers={"WWW-Authenticate": challenge})


class TokenStore:
    """The hashes of the accepted tokens, as the file last said; no file, or a file that cannot be read: none."""

    def __init__(self, path: Path | str, check_every_s: float = CHECK_EVERY_S):
        self.path = Path(path)
        self.check_every_s = check_every_s
        self.hashes: dict[bytes, str] = {}  # digest -> name; replaced whole on a change, never mutated
        self._state: FileState = None
        self._next_check = 0.0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Read the file again if it changed since the last look; on the request path, at most once a second."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        self._next_check = now + self.check_every_s
        try:
            stat = os.stat(self.path)  # follows symlinks: a Kubernetes Secret volume swaps one on update
            state: FileState = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            state = None
        if state == self._state and not force:
            return
        self._state = state
        try:
            self.hashes = tokens.read(self.path)
        except tokens.TokenFileError as error:  # fail closed: no token is accepted until the file is fixed
            self.hashes = {}
            log.warning("accepting no token: %s", error)
        else:
            log.info("token file %s: %d token(s)", self.path, len(self.hashes))

    def owner(self, token: str) -> str | None:
        """The name of the token, or None. Every stored hash is compared, each in constant time."""
        self.refresh()
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()  # any text: never raises
        found = None
        for stored, name in self.hashes.items():
            if hmac.compare_digest(stored, presented):
                found = name
        return found


def require_tokens(app: Flask) -> TokenStore:
    """Install the check for every request of `app` (after the hooks registered before it: the metrics' route)."""
    store = TokenStore(app.config["TOKENS_FILE"])
    app.extensions["tokens"] = store

    def check_token() -> None:
        asked = request._get_current_object()  # one context lookup, not one per attribute: this runs every request
        rule = asked.url_rule  # None when no route matched (404, 405): answered only with a token
        if rule is not None and rule.rule in OPEN_RULES:
            return
        environ = asked.environ
        credentials = environ.get("HTTP_AUTHORIZATION")
        if not credentials:  # RFC 6750 3.1: no error code in the challenge when the request had no credentials
            raise Unauthorized("this route needs a token: send `Authorization: Bearer <token>`", REALM)
        scheme, _, token = credentials.partition(" ")  # RFC 6750 2.1: "Bearer" (any case), spaces, the token
        name = store.owner(token.lstrip(" ")) if scheme.lower() == "bearer" else None  # anything else: no hash matches
        if name is None:
            raise Unauthorized(
                "the token was not accepted: it is malformed, unknown or revoked", f'{REALM}, error="invalid_token"'
            )
        environ[CLIENT_KEY] = name  # who asked, by the token's name (never the token), for whoever logs it

    app.before_request(check_token)
    return store
