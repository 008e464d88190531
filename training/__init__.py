"""Training half of fashion-softmax: the scratch softmax regression, its data, loop and export.

Run it with `python -m training --help`; the seed's functions are importable from here. They are
imported on first use, so that a command without torch (`python -m training.rollback`) starts at once.
"""

import importlib

__all__ = [
    "Accumulator",
    "SoftmaxRegression",
    "accuracy",
    "cross_entropy",
    "evaluate_accuracy",
    "sgd",
    "softmax",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("training.model"), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
