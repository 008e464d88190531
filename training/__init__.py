"""Training half of fashion-softmax: the scratch softmax regression, its data, loop and export.

Run it with `python -m training --help`; the seed's functions are importable from here.
"""

from training.model import (
    Accumulator,
    SoftmaxRegression,
    accuracy,
    cross_entropy,
    evaluate_accuracy,
    sgd,
    softmax,
)

__all__ = [
    "Accumulator",
    "SoftmaxRegression",
    "accuracy",
    "cross_entropy",
    "evaluate_accuracy",
    "sgd",
    "softmax",
]
