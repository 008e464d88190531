"""How the compose checks reach the stack, as a user does: https with the certificate checked against the
development CA (REQUESTS_CA_BUNDLE, which requests reads itself), and a token (FASHION_SOFTMAX_TOKEN).
docker/compose_test.sh makes both for its run and sets the two variables.
"""

from __future__ import annotations

import os
import socket
import ssl

import requests


def auth(token: str | None = None) -> dict[str, str]:
    """The Authorization header of `token`, by default the run's."""
    return {"Authorization": f"Bearer {token or os.environ['FASHION_SOFTMAX_TOKEN']}"}


def session(token: str | None = None) -> requests.Session:
    client = requests.Session()
    client.headers.update(auth(token))
    return client


def tls_context(strict: bool = True) -> ssl.SSLContext:
    """Certificates checked against the development CA; strict: RFC 5280 as Python 3.13 checks by default."""
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    if strict:
        context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def tls_connection(host: str, port: int, timeout: float = 5) -> ssl.SSLSocket:
    """A TLS socket to the proxy, for checks that write HTTP by hand (stalled clients)."""
    return tls_context().wrap_socket(socket.create_connection((host, port), timeout=timeout), server_hostname=host)
