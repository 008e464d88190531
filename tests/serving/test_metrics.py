"""What the model sees, in /metrics: predictions per class, images flagged, the novelty ratio histogram and the
drift gauges; the bulk histogram update against prometheus_client's own observe; gathered writes; the drift window's
arithmetic."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.images import GARMENTS, multipart, png
from harness.reference import model_outputs
from serving.metrics import NOVELTY_BUCKETS, DriftWindow, SampleWriter, observations
from training.data import LABELS


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, its labels sorted): value} of a Prometheus text exposition."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}  # fmt: skip


def histogram_in_new_registry() -> tuple[Histogram, CollectorRegistry]:
    registry = CollectorRegistry()
    return Histogram("ratio", "a ratio", ["version"], buckets=NOVELTY_BUCKETS, registry=registry), registry


@pytest.mark.parametrize("count", [1, 2, 7, 500])
def test_observations_write_what_one_observe_per_value_writes(count):
    rng = np.random.default_rng(count)
    values = np.concatenate([rng.exponential(1.0, count), np.array(NOVELTY_BUCKETS[: min(count, 3)])])
    values = np.concatenate([values, [50.0, -1.0]])  # past the last bound, below the first
    bulk, bulk_registry = histogram_in_new_registry()
    one_by_one, registry = histogram_in_new_registry()
    SampleWriter(gather=False).add(observations(bulk.labels("1"), values.astype(np.float32)))
    for value in values.astype(np.float32):
        one_by_one.labels("1").observe(float(value))
    bulk_samples = samples(generate_latest(bulk_registry).decode())
    expected = samples(generate_latest(registry).decode())
    created = [key for key in expected if key[0].endswith("_created")]
    for key in created:  # the time each was made
        bulk_samples.pop(key), expected.pop(key)
    assert bulk_samples.keys() == expected.keys()
    for key, value in expected.items():
        assert bulk_samples[key] == pytest.approx(value, rel=1e-9), key


def test_gathered_increments_are_written_once_per_sample_by_the_timer_or_a_flush():
    registry = CollectorRegistry()
    counter = Counter("requests", "requests", ["route"], registry=registry)
    histogram = Histogram("seconds", "seconds", buckets=(0.1, 1.0), registry=registry)
    writes = []  # what reaches the sample values: (sample value, amount)

    class Recorded:
        def __init__(self, value):
            self.value = value

        def inc(self, amount):
            writes.append((self.value, amount))
            self.value.inc(amount)

    a, b = Recorded(counter.labels("a")._value), Recorded(counter.labels("b")._value)
    writer = SampleWriter(gather=True, every_s=0.2)
    for seconds in (0.05, 0.5, 5.0):
        writer.add([(a, 1), (b, 2), *observations(histogram, [seconds])])
    assert writes == []  # gathered, not yet written
    writer.flush()
    assert sorted(writes, key=lambda write: write[1]) == [(a.value, 3), (b.value, 6)]  # once per sample
    assert registry.get_sample_value("requests_total", {"route": "b"}) == 6.0
    assert registry.get_sample_value("seconds_bucket", {"le": "0.1"}) == 1.0
    assert registry.get_sample_value("seconds_bucket", {"le": "+Inf"}) == 3.0
    assert registry.get_sample_value("seconds_sum") == pytest.approx(5.55)
    writer.add([(a, 1)])  # no flush asked for: the timer writes it
    deadline = time.monotonic() + 10
    while registry.get_sample_value("requests_total", {"route": "a"}) != 4.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.get_sample_value("requests_total", {"route": "a"}) == 4.0


def test_counts_go_straight_to_the_samples_in_one_process():
    registry = CollectorRegistry()
    counter = Counter("requests", "requests", registry=registry)
    SampleWriter(gather=False).add([(counter._value, 2)])
    assert registry.get_sample_value("requests_total") == 2.0


def test_the_drift_window_keeps_the_last_images_in_a_ring():
    window = DriftWindow(5)
    assert (window.size, window.psi(np.full(10, 0.1)), window.flagged_share()) == (0, 0.0, 0.0)
    window.add(np.array([1, 2, 3]), np.array([True, False, False]))
    assert window.size == 3 and window.flagged_share() == pytest.approx(1 / 3)
    window.add(np.array([4, 5, 6, 7]), np.array([False, False, True, True]))  # wraps: 1 and 2 leave
    assert window.size == 5 and sorted(window.classes.tolist()) == [3, 4, 5, 6, 7]
    assert window.flagged_share() == pytest.approx(2 / 5)
    window.add(np.arange(12) % 10, np.zeros(12, bool))  # more than it holds: only the last 5 (7, 8, 9, 0, 1) stay
    assert sorted(window.classes.tolist()) == [0, 1, 7, 8, 9]
    assert window.flagged_share() == 0.0


def test_psi_is_near_zero_for_the_training_shares_and_large_for_one_class():
    shares = np.full(10, 0.1)
    window = DriftWindow(1000)
    window.add(np.arange(1000) % 10, np.zeros(1000, bool))  # exactly the training shares
    assert window.psi(shares) < 1e-9
    skewed = DriftWindow(1000)
    skewed.add(np.full(1000, 8), np.zeros(1000, bool))  # everything a Bag
    psi = skewed.psi(shares)
    observed = (np.bincount(np.full(1000, 8), minlength=10) + 0.5) / 1005
    assert psi == pytest.approx(float(np.sum((observed - shares) * np.log(observed / shares))))
    assert psi > 0.25  # a large shift, as the alert reads it


def metric_values(client, name: str) -> dict[tuple, float]:
    """{labels sorted: value} of the samples named `name` in the app's /metrics."""
    exposed = samples(client.get("/metrics").get_data(as_text=True))
    return {labels: value for (sample, labels), value in exposed.items() if sample == name}


def test_predictions_flags_novelty_and_drift_reach_metrics(client, model_dir):
    garments = np.stack([GARMENTS[k] for k in (3, 3, 7, 0)])
    noise = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    pixels = np.concatenate([garments, noise])
    expected = model_outputs(model_dir, pixels)
    body, content_type = multipart([(f"image{i}", f"{i}.png", png(image)) for i, image in enumerate(pixels)])
    response = client.post("/predict?invert=false", data=body, content_type=content_type)
    assert response.status_code == 200, response.get_data(as_text=True)
    answered = response.get_json()["predictions"]
    assert [p["in_distribution"] for p in answered] == expected["in_distribution"].tolist() == [True] * 4 + [False] * 3
    version = str(response.get_json()["model"]["repository_version"])

    classes = expected["probabilities"].argmax(1)
    per_class = metric_values(client, "fashion_softmax_predictions_total")
    for class_id, label in enumerate(LABELS):
        count = per_class.get((("class", label), ("version", version)), 0.0)
        assert count == (classes == class_id).sum(), label
    assert metric_values(client, "fashion_softmax_images_flagged_total") == {(("version", version),): 3.0}
    assert metric_values(client, "fashion_softmax_images_predicted_total") == {(("version", version),): 7.0}

    threshold = json.loads((model_dir / "model.json").read_text())["novelty"]["threshold"]
    ratios = expected["novelty"] / threshold  # float32, as the service divides
    buckets = metric_values(client, "fashion_softmax_novelty_ratio_bucket")
    for bound in NOVELTY_BUCKETS:
        assert buckets[(("le", str(bound)), ("version", version))] == (ratios <= bound).sum(), bound
    assert metric_values(client, "fashion_softmax_novelty_ratio_count") == {(("version", version),): 7.0}

    assert metric_values(client, "fashion_softmax_drift_window_images") == {(): 7.0}
    assert metric_values(client, "fashion_softmax_drift_flagged_share")[()] == pytest.approx(3 / 7)
    psi = metric_values(client, "fashion_softmax_drift_class_psi")[()]
    assert psi > 0.25  # 7 images in a few classes: far from the training set's tenth each
