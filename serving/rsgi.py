"""The Flask app behind Granian's RSGI interface: a request's body is read whole, by the worker's event
loop, before the app runs.

Why not a WSGI server: there the app reads its own body, from a thread (gunicorn's workers, Granian's
WSGI threads), so a client that trickles its body holds a thread for as long as it likes, and as
many such clients as threads stop the service. Here a waiting body holds a coroutine, nothing more;
the app then runs on the worker's loop, one request at a time (how a GIL-bound app runs anyway), with
no thread hand-off per request. Limits come first: a body declared longer than the app's
MAX_CONTENT_LENGTH is not read, a chunked one is read only up to it, and one that is not complete
after BODY_TIMEOUT seconds is given up; in each case the app itself answers (413 or 408 in its JSON
form) when it reads the body.

    create_rsgi_app()   # the factory Granian calls in each worker (serving/server.py)
"""

from __future__ import annotations

import asyncio
import io
import sys

from granian.rsgi import ProtocolClosed
from werkzeug.exceptions import RequestTimeout

from serving import create_app

# Per PEP 3333, what every request's environ holds; the request's own keys are added to a copy.
SERVER_ENVIRON = {
    "SCRIPT_NAME": "",
    "wsgi.version": (1, 0),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,  # one request at a time per worker process
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.input_terminated": True,  # wsgi.input ends where the body does (Werkzeug then reads it as is)
}
UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
DECHUNKED = "transfer-encoding"  # a chunked body reaches the app whole, with its length: no longer chunked


class UnreadBody(io.RawIOBase):
    """wsgi.input of a body given up on: reading it raises the HTTP error the app then answers with."""

    def __init__(self, error: Exception):
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self.error


class BufferedWSGI:
    """An RSGI application around a WSGI one: the body is read first, without a thread, then the app called."""

    def __init__(self, wsgi_app, max_body: int | None, body_timeout: float, on_stop=None):
        self.wsgi_app = wsgi_app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.on_stop = on_stop  # called when the worker stops serving

    def __rsgi_del__(self, loop) -> None:
        """Granian calls this in each worker once it has stopped serving (a graceful stop)."""
        if self.on_stop is not None:
            self.on_stop()

    async def __rsgi__(self, scope, protocol) -> None:
        declared = scope.headers.get("content-length")
        declared = int(declared) if declared is not None and declared.isdigit() else None
        try:
            async with asyncio.timeout(self.body_timeout):
                body, length = await self._read_body(declared, protocol)
        except TimeoutError:
            body = UnreadBody(RequestTimeout(f"the body did not arrive within {self.body_timeout:g} s"))
            length = declared or 0
        except ProtocolClosed:  # the client left before its body was complete: nobody to answer
            return
        environ = self._environ(scope, body, length)
        response = []

        def start_response(status: str, headers: list, exc_info=None):
            response[:] = [int(status[:3]), headers]

        chunks = self.wsgi_app(environ, start_response)
        try:
            content = b"".join(chunks)  # this app's answers are all small (JSON, the page, small files)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status, headers = response
        protocol.response_bytes(status, headers, content)

    async def _read_body(self, declared: int | None, protocol) -> tuple[io.BytesIO, int]:
        """(wsgi.input, CONTENT_LENGTH): the whole body, or none once it is known to pass the limit.

        Past the limit the length is the declared one, or what a chunked body had sent by then: the app
        sees a body longer than it accepts and answers 413 without reading it.
        """
        if declared is not None:
            if self.max_body is not None and declared > self.max_body:
                return io.BytesIO(), declared
            return io.BytesIO(await protocol() if declared else b""), declared
        received, length = [], 0
        async for chunk in protocol:  # chunked transfer: the length is known at the end
            received.append(chunk)
            length += len(chunk)
            if self.max_body is not None and length > self.max_body:
                return io.BytesIO(), length
        return io.BytesIO(b"".join(received)), length

    @staticmethod
    def _environ(scope, body, length: int) -> dict:
        host, _, port = scope.server.rpartition(":")
        client, _, client_port = scope.client.rpartition(":")
        environ = {
            **SERVER_ENVIRON,
            "REQUEST_METHOD": scope.method,
            # WSGI strings carry the raw bytes as latin-1; Granian gives the path percent-decoded, as UTF-8
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client,
            "REMOTE_PORT": client_port,
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": body,
        }
        for name, value in scope.headers.items():  # lower-case names, repeated ones once per value
            if name == DECHUNKED:
                continue
            key = UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_")
            if key in environ and key.startswith("HTTP_"):  # repeated: one comma-joined value (RFC 9110 5.3)
                environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                environ[key] = value
        if length or "CONTENT_LENGTH" in environ:
            environ["CONTENT_LENGTH"] = str(length)
        return environ


def create_rsgi_app() -> BufferedWSGI:
    """Granian's factory: one Flask app (one model) per worker process, with its body limits."""
    app = create_app()
    flush_metrics = app.extensions["metrics"].writer.flush  # the counts a worker gathered: written as it stops
    return BufferedWSGI(app, app.config["MAX_CONTENT_LENGTH"], app.config["BODY_TIMEOUT"], on_stop=flush_metrics)
