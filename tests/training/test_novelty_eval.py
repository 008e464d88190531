"""The evaluation beside the baselines: each method's own 95% threshold, AUROC against the test set, the share
flagged per set, the table the training job prints."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from harness.publish import synthetic_split
from training.novelty import pixels
from training.novelty_eval import METHODS, Mahalanobis, score_all, table


def test_the_mahalanobis_baseline_is_the_distance_under_the_ridged_covariance():
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((400, 784)) ** 3).float()  # skewed pixels, like images
    X_val = torch.from_numpy(rng.random((50, 784)) ** 3).float()
    baseline = Mahalanobis(X, X_val)
    covariance = np.cov(X.double().numpy().T) + baseline.ridge * np.eye(784)
    centred = X_val.double().numpy() - X.double().numpy().mean(0)
    expected = np.einsum("ij,jk,ik->i", centred, np.linalg.inv(covariance), centred)
    np.testing.assert_allclose(baseline(X_val).numpy(), expected, rtol=1e-4)


def test_the_ridge_is_the_one_the_validation_images_like_best():
    rng = np.random.default_rng(1)
    low_rank = torch.from_numpy(rng.normal(size=(600, 5)) @ rng.normal(size=(5, 784))).float()
    assert Mahalanobis(low_rank[:500], low_rank[500:]).ridge == 1e-4  # the data fill 5 directions: little ridge
    noisy = low_rank + torch.from_numpy(rng.normal(0, 0.3, size=(600, 784))).float()
    assert Mahalanobis(noisy[:500], noisy[500:]).ridge == 1e-1  # isotropic noise everywhere: the largest


def test_msp_and_energy_are_computed_from_the_classifiers_logits(trained, novelty):
    _, result = trained
    X = pixels(synthetic_split(32, 5))
    mahalanobis = Mahalanobis(X, X)
    scores = score_all(novelty.detector, result.net, mahalanobis, X)
    with torch.no_grad():
        logits = X @ result.net.W + result.net.b
    np.testing.assert_allclose(scores["msp"], -torch.softmax(logits, 1).max(1).values.numpy(), atol=1e-6)
    np.testing.assert_allclose(scores["energy"], -torch.logsumexp(logits, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(scores["novelty"], novelty.detector(X).detach().numpy())


def test_every_set_is_measured_for_every_method_at_its_own_threshold(novelty_on_sets, ood_sets):
    summary, scores, thresholds = novelty_on_sets.summary, novelty_on_sets.scores, novelty_on_sets.thresholds
    evaluation = summary["evaluation"]
    assert [(row["name"], row["role"]) for row in evaluation["sets"]] == [(s.name, s.role) for s in ood_sets]
    assert set(evaluation["roles"]) == {"tune", "report"} and set(evaluation["baselines"]) >= set(METHODS[1:])
    # each method's threshold accepts 95% of the same validation images
    for method in METHODS:
        assert evaluation["accepted"]["validation"][method] >= 0.95
    assert thresholds["novelty"] == summary["threshold"] == novelty_on_sets.detector.threshold
    test = scores["test"]
    assert summary["test_accepted"] == evaluation["accepted"]["test"]["novelty"]
    assert summary["test_accepted"] == pytest.approx((test["novelty"] <= thresholds["novelty"]).mean(), abs=1e-4)
    for row, ood_set in zip(evaluation["sets"], ood_sets, strict=True):
        assert row["images"] == len(ood_set.images) and row["source"] == ood_set.source
        ours = scores[f"{ood_set.name} ({ood_set.role})"]
        for method in METHODS:
            truth = np.r_[np.zeros(len(test[method])), np.ones(len(ours[method]))]
            auroc = roc_auc_score(truth, np.r_[test[method], ours[method]])
            assert row["auroc"][method] == pytest.approx(auroc, abs=1e-4)
            assert row["flagged"][method] == pytest.approx((ours[method] > thresholds[method]).mean(), abs=1e-4)


def test_the_table_has_a_row_per_set_and_the_acceptance(novelty_on_sets):
    summary = novelty_on_sets.summary
    lines = table(summary).splitlines()
    assert "novelty (ours)" in lines[0] and "Mahalanobis" in lines[0] and "AUROC  flagged" in lines[1]
    rows = summary["evaluation"]["sets"]
    assert len(lines) == 2 + len(rows) + 2
    for line, row in zip(lines[2:], rows, strict=False):
        assert line.startswith(f"{row['name']} ({row['role']})")
        assert f"{row['auroc']['novelty']:.3f}" in line and f"{row['flagged']['mahalanobis']:.1%}" in line
    assert lines[-1].startswith("Fashion-MNIST test") and f"{summary['test_accepted']:.1%}" in lines[-1]
    assert all(len(line) == len(lines[0]) for line in lines[2:])  # columns line up
