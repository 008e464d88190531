"""A bounded closed-loop load on one URL: client threads POST the same body until stopped, every answer kept.

    with Load("http://127.0.0.1:8000/predict", png_bytes, "image/png") as load:
        ...                    # publish a model, kill a replica, ...
    load.failed()              # answers that were not 200 (or raised)

Used where correctness under load is the point (reload, replica loss, rollout), not for throughput: wrk is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    status: int | str  # HTTP status, or the exception's name when none came
    version: str | None  # X-Model-Version: the model that answered
    seconds: float  # latency


class Load:
    def __init__(self, url: str, body: bytes, content_type: str, clients: int = 4, limit_s: float = 300, headers=None):
        self.url, self.body, self.content_type = url, body, content_type
        self.headers = {"Content-Type": content_type, **(headers or {})}  # headers: a token, for one
        self.answers: list[Answer] = []  # list.append is atomic: no lock needed
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit_s  # a forgotten load still ends
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        session = requests.Session()
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            started = time.monotonic()
            try:
                response = session.post(self.url, data=self.body, headers=self.headers, timeout=10)
                status, version = response.status_code, response.headers.get("X-Model-Version")
            except requests.RequestException as error:
                status, version = type(error).__name__, None
                session = requests.Session()  # start over on a fresh connection
            now = time.monotonic()
            self.answers.append(Answer(now, status, version, now - started))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def failed(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 200]

    def versions_after(self, moment: float) -> set[str | None]:
        return {answer.version for answer in self.answers if answer.at > moment}
