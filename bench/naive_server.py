"""The naive baseline: the book's model in torch behind Flask's development server.

    python -m bench.naive_server ARTIFACTS_DIR PORT

Written the way a student first does it: one multipart image per request, PIL and
torch on every call, `app.run(threaded=True)`. Used only by bench/bench_serve.py.
"""

import sys

import numpy as np
import torch
from flask import Flask, jsonify, request
from PIL import Image

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

weights = np.load(f"{sys.argv[1]}/weights.npz")
W = torch.tensor(weights["W"])
b = torch.tensor(weights["b"])
app = Flask(__name__)


def softmax(X):
    X_exp = torch.exp(X)
    return X_exp / X_exp.sum(1, keepdim=True)


def net(X):
    return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)


@app.route("/predict", methods=["POST"])
def predict():
    image = Image.open(request.files["image"]).convert("L").resize((28, 28))
    X = torch.tensor(np.array(image), dtype=torch.float32) / 255
    probabilities = net(X)[0]
    best = int(probabilities.argmax())
    return jsonify(label=LABELS[best], probabilities={LABELS[i]: float(p) for i, p in enumerate(probabilities)})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
