"""Check a running compose stack from outside, as a user would: `make compose-test` calls it.

    PYTHONPATH=. python docker/check_stack.py https://127.0.0.1:8000 FOLDER_WITH_A_COPY_OF_MODEL_ONNX
    (with harness/stack_client.py's variables: the CA and the token)

Posts real Fashion-MNIST test images to the published port and checks the
predictions (accuracy, and agreement with the deployed model.onnx run locally),
then bad input (4xx JSON), the page at / and /docs, /ready, and /metrics summed over the api replicas (read with
`docker compose exec`: the replicas are not published). Exits non-zero on the first failure.
"""

from __future__ import annotations

import sys

import numpy as np

from harness import stack_client
from harness.compose import check, compose
from harness.images import png
from harness.reference import answered_probabilities, model_probabilities
from training.data import load_fashion_mnist

IMAGES = 200  # real test images sent, in batches
BATCH = 50


def main(url: str, model_dir: str) -> None:
    api = stack_client.session()  # https, the certificate checked, the run's token
    _, test = load_fashion_mnist("data")
    images, labels = test.images[:IMAGES].numpy(), test.labels[:IMAGES].numpy()

    ready = api.get(f"{url}/ready", timeout=5)
    check(ready.status_code == 200 and ready.json()["status"] == "ready", f"/ready says ready ({ready.text.strip()})")

    received = []
    for start in range(0, IMAGES, BATCH):
        files = [("image", (f"{i}.png", png(images[i]), "image/png")) for i in range(start, start + BATCH)]
        response = api.post(f"{url}/predict", files=files, timeout=30)
        check(response.status_code == 200, f"multipart batch of {BATCH} PNGs answered 200")
        received.append(answered_probabilities(response.json()))
    received = np.concatenate(received)
    accuracy = float((received.argmax(1) == labels).mean())
    check(accuracy > 0.75, f"accuracy on {IMAGES} real test images is {accuracy:.3f} (> 0.75)")

    expected = model_probabilities(model_dir, images)
    difference = float(np.abs(received - expected).max())
    check(difference < 1e-5, f"probabilities match the deployed model.onnx run here (max diff {difference:.1e})")

    single = api.post(f"{url}/predict", data=png(images[0]), headers={"Content-Type": "image/png"}, timeout=10)
    check(single.json()["predictions"][0]["class_id"] == int(received[0].argmax()), "raw PNG body gives the same")

    for body, content_type, status in ((b"not an image", "image/png", 400), (b"hello", "text/plain", 415)):
        response = api.post(f"{url}/predict", data=body, headers={"Content-Type": content_type}, timeout=10)
        check(
            response.status_code == status and "message" in response.json()["error"],
            f"bad input ({content_type}) gets {status} with a JSON error: {response.json()['error']['code']}",
        )

    # The page a person opens, its files and Swagger UI, through the proxy (the image carries them all).
    page_files = (
        ("/", "text/html", 'src="static/page.js"'),
        ("/static/page.js", "text/javascript", "predict"),
        ("/docs", "text/html", "swagger-ui"),
        ("/docs/swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"),
    )
    for path, kind, text in page_files:
        response = api.get(f"{url}{path}", timeout=10)
        served = response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
        check(served and text in response.text, f"GET {path} serves {kind} ({len(response.content)} bytes)")
    seen = api.post(
        f"{url}/predict?return_input=true", data=png(images[0]), headers={"Content-Type": "image/png"}, timeout=10
    )
    check(seen.json()["predictions"][0]["input_png"].startswith("data:image/png;"), "?return_input=true: the input")

    # Behind the proxy, each api replica counts its own requests (Prometheus scrapes every replica):
    # read each replica's /metrics from inside its container and add them up.
    replicas = compose("ps", "-q", "api").split()
    scrape = ("import os, urllib.request as r; print(r.urlopen(r.Request('http://127.0.0.1:8000/metrics', headers="
              "{'Authorization': 'Bearer ' + os.environ['FASHION_SOFTMAX_TOKEN']})).read().decode())")  # fmt: skip
    metrics = "\n".join(compose("exec", "-T", "-e", "FASHION_SOFTMAX_TOKEN", "--index", str(i), "api", "python", "-c",
                                scrape) for i in range(1, len(replicas) + 1))  # fmt: skip
    predicted = sum(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("fashion_softmax_images_predicted_total"))  # fmt: skip
    check(predicted >= IMAGES + 1, f"/metrics of the {len(replicas)} replicas count {predicted:.0f} images predicted")
    check('status="415"' in metrics, "/metrics counts requests by status")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
