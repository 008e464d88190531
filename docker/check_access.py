"""Who may reach the running compose stack, and how: TLS at the proxy, tokens through it, and what the images hold.

    python docker/check_access.py https://127.0.0.1:PORT TOKENS_FILE    (make compose-test; harness/stack_client.py)

1. TLS: the certificate verifies against the development CA (strictly); TLS 1.3 and 1.2 are accepted, 1.1 and 1.0
   refused by the server, and so is a cipher without forward secrecy; HSTS on https answers (not for localhost);
   plain HTTP sent to the published port is redirected to https.
2. Tokens, through the proxy: each route without a token, with a wrong one and with a right one; a token added to
   the mounted file is accepted, then refused once removed, with no restart; /metrics is not served there.
3. The protocols' own clients over TLS, the certificate checked against the CA: tritonclient and KServe's client
   with the token in `headers`; without it, 401.
4. The supply chain: the serving image's SBOM (CycloneDX) lists exactly requirements/serve.txt, and the training
   image's venv is exactly requirements/train.txt (pip freeze).
5. No token of this check in any container's log.
TOKENS_FILE: the host side of the token file the api replicas read. Exits non-zero on the first failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import gevent.ssl
import numpy as np
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tritonclient.utils import InferenceServerException

from harness import stack_client
from harness.compose import check, compose, docker, no_token_in_logs
from serving import tokens

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fashion-softmax"
HSTS = "max-age=63072000"
PNG = (  # a 1x1 black PNG: any image will do where only the status matters
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU\x00\x00\x00\nIDATx"
    b"\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82"
)
PROTECTED = [("POST", "/predict"), ("GET", "/metadata"), ("GET", "/artifacts/weights.png"), ("GET", "/v2"),
             ("GET", f"/v2/models/{MODEL}"), ("POST", f"/v2/models/{MODEL}/infer")]  # fmt: skip
OPEN = ["/health", "/ready", "/v2/health/live", "/v2/health/ready", "/", "/static/page.js", "/docs", "/openapi.json"]


def handshake(host: str, port: int, version: ssl.TLSVersion, ciphers: str | None = None) -> tuple[str, str] | str:
    """(protocol, cipher) agreed, or the reason the handshake failed. This client offers the version whatever
    its own defaults say (security level 0), so a refusal is the server's."""
    context = stack_client.tls_context(strict=False)
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
    try:
        with context.wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname=host) as tls:
            return tls.version(), tls.cipher()[0]
    except ssl.SSLError as error:
        return error.reason or str(error)


def tls(url: str) -> None:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with stack_client.tls_connection(host, port) as strict:
        check(strict.version() == "TLSv1.3", f"the certificate verifies against the development CA (strict): "
                                             f"{strict.version()}, {strict.cipher()[0]}")  # fmt: skip
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        agreed = handshake(host, port, version)
        check(isinstance(agreed, tuple) and agreed[0] == version.name.replace("_", "."), f"{version.name}: {agreed}")
    for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        refused = handshake(host, port, version)
        check(refused == "TLSV1_ALERT_PROTOCOL_VERSION", f"{version.name} refused by the server ({refused})")
    weak = handshake(host, port, ssl.TLSVersion.TLSv1_2, "AES128-SHA:AES256-GCM-SHA384:@SECLEVEL=0")
    check(isinstance(weak, str), f"TLS 1.2 ciphers without forward secrecy refused ({weak})")

    api = stack_client.session()
    answer = api.get(f"{url}/health", timeout=10)
    check(answer.headers.get("Strict-Transport-Security") == HSTS, f"HSTS on https: {HSTS}")
    local = api.get(f"{url}/health", headers={"Host": f"localhost:{port}"}, timeout=10)
    check("Strict-Transport-Security" not in local.headers, "no HSTS for localhost (it would pin every local port)")
    plain = requests.get(f"http://{host}:{port}/predict?x=1", allow_redirects=False, timeout=10)
    check(plain.status_code == 308 and plain.headers["Location"] == f"https://{host}:{port}/predict?x=1",
          f"plain HTTP on the published port: {plain.status_code} to {plain.headers.get('Location')}")  # fmt: skip


def send(client: requests.Session, url: str, method: str, path: str, token: str | None = None) -> requests.Response:
    headers = {"Content-Type": "image/png"} | (stack_client.auth(token) if token else {})
    return client.request(method, url + path, data=PNG if method == "POST" else None, headers=headers, timeout=10)


def tokens_through_the_proxy(url: str, token_file: Path) -> list[str]:
    """The tokens this check made (the log check looks for them)."""
    anonymous = requests.Session()  # no token
    wrong = tokens.new_token()
    for method, path in PROTECTED:
        answers = [send(anonymous, url, method, path, token) for token in (None, wrong)]
        right = send(anonymous, url, method, path, os.environ["FASHION_SOFTMAX_TOKEN"])
        refused = all(a.status_code == 401 and a.headers["WWW-Authenticate"].startswith("Bearer") for a in answers)
        error = answers[0].json()["error"]
        form = isinstance(error, str) if path.startswith("/v2") else error["code"] == "unauthorized"
        check(
            refused and form and right.status_code in (200, 400),
            f"{method} {path}: 401 without a token and with a wrong one, {right.status_code} with the right one",
        )
    for path in OPEN:
        check(anonymous.get(url + path, timeout=10).status_code == 200, f"GET {path}: open, 200 without a token")
    metrics = send(anonymous, url, "GET", "/metrics", os.environ["FASHION_SOFTMAX_TOKEN"])
    check(metrics.status_code == 404 and metrics.json()["error"]["code"] == "not_found",
          "/metrics is not served through the proxy, even with a token")  # fmt: skip

    added = tokens.add(token_file, "compose-test-removed")
    check(answered_by_every_replica(url, added, 200), "a token added to the file is accepted, no restart")
    tokens.remove(token_file, "compose-test-removed")
    started = time.monotonic()
    check(
        answered_by_every_replica(url, added, 401),
        f"the token removed from the file is refused {time.monotonic() - started:.1f} s later, no restart",
    )
    return [added, wrong]


def answered_by_every_replica(url: str, token: str, status: int, seconds: float = 15) -> bool:
    """Until 20 requests in a row, on new connections (spread over the replicas), get `status`."""
    deadline, in_a_row = time.monotonic() + seconds, 0
    while in_a_row < 20 and time.monotonic() < deadline:
        answer = send(requests.Session(), url, "GET", "/metadata", token)
        in_a_row = in_a_row + 1 if answer.status_code == status else 0
    return in_a_row >= 20


def clients_over_tls(url: str) -> None:
    address, ca = urlsplit(url).netloc, os.environ["REQUESTS_CA_BUNDLE"]
    untrusting = triton.InferenceServerClient(address, ssl=True, ssl_context_factory=gevent.ssl.create_default_context)
    try:
        untrusting.is_server_live()
        trusted = True
    except Exception:  # the client raises its TLS library's own error
        trusted = False
    check(not trusted, "tritonclient without the development CA refuses the certificate")
    client = triton.InferenceServerClient(address, ssl=True, ssl_options={"ca_certs": ca},
                                          ssl_context_factory=gevent.ssl.create_default_context)  # fmt: skip
    try:
        image = triton.InferInput("image", [1, 1, 28, 28], "FP32")
        image.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
        check(client.is_server_ready(), "tritonclient over TLS: the server is ready (a probe: no token)")
        try:
            client.infer(MODEL, [image])
            status = "200"
        except InferenceServerException as error:
            status = error.status()
        check(status == "401", f"tritonclient over TLS without the token: {status}")
        top = client.infer(MODEL, [image], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)],
                           headers=stack_client.auth()).as_numpy("probabilities")  # fmt: skip
        check(top.shape == (1, 3), f"tritonclient over TLS with headers=: top 3 {[row.decode() for row in top[0]]}")
    finally:
        client.close()

    async def kserve_infer():
        kserve = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10, verify=ca))
        try:
            tensor = InferInput("image", [2, 1, 28, 28], "FP32")
            tensor.set_data_from_numpy(np.zeros((2, 1, 28, 28), np.float32))
            request = InferRequest(MODEL, [tensor], request_id="compose-test")
            return await kserve.infer(url, request, model_name=MODEL, headers=stack_client.auth())
        finally:
            await kserve.close()

    answer = asyncio.run(kserve_infer())
    check(answer.id == "compose-test" and answer.outputs[0].as_numpy().shape == (2, 10),
          "KServe's client over TLS with the token in headers")  # fmt: skip


def locked(lock: str) -> dict[str, str]:
    """{name: version} of a lock's pins for the images' platform (Python 3.11 on Linux)."""
    environment = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": os.uname().machine,
                   "platform_python_implementation": "CPython", "implementation_name": "cpython"}  # fmt: skip
    pins = {}
    for line in (ROOT / "requirements" / f"{lock}.txt").read_text().splitlines():
        if line[:1].isalnum():
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pins[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def supply_chain() -> None:
    with tempfile.TemporaryDirectory() as folder:
        compose("cp", "api:/opt/sbom.cdx.json", f"{folder}/sbom.cdx.json")
        sbom = json.loads(Path(f"{folder}/sbom.cdx.json").read_text())
    listed = {canonicalize_name(component["name"]): component["version"] for component in sbom["components"]}
    check(sbom["bomFormat"] == "CycloneDX" and sbom["metadata"]["component"]["name"] == "fashion-softmax",
          f"the serving image carries a CycloneDX {sbom['specVersion']} SBOM of its Python environment")  # fmt: skip
    check(listed == locked("serve"), f"its {len(listed)} components are requirements/serve.txt's, versions and all")
    # the image compose built, run as it is (compose run would build it again); the base image's pip reads the venv
    image = compose("config", "--images", "train").strip()
    frozen = docker("run", "--rm", "--entrypoint", "pip", image, "--python", "/opt/venv/bin/python", "freeze", "--all")
    installed = {canonicalize_name(name): version for name, _, version in
                 (line.partition("==") for line in frozen.splitlines() if "==" in line)}  # fmt: skip
    check(installed == locked("train"), f"the training image's venv is requirements/train.txt, pip freeze for pin "
                                        f"({len(installed)} packages)")  # fmt: skip


def main(url: str, token_file: str) -> None:
    tls(url)
    made = tokens_through_the_proxy(url, Path(token_file))
    clients_over_tls(url)
    supply_chain()
    no_token_in_logs(made)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
