"""The naive baseline: the book's model in torch behind Flask's development server.

    FASHION_SOFTMAX_MODEL_DIR=artifacts FASHION_SOFTMAX_PORT=8001 python -m bench.naive_server

Written the way a student first does it: one multipart image per request, PIL and
torch on every call, `app.run(threaded=True)`. Used only by bench/bench_serve.py.
"""

import os

import numpy as np
import torch
from flask import Flask, jsonify, request
from PIL import Image

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

weights = np.load(f"{os.environ.get('FASHION_SOFTMAX_MODEL_DIR', 'artifacts')}/weights.npz")
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
    app.run(host="127.0.0.1", port=int(os.environ.get("FASHION_SOFTMAX_PORT", "8001")), threaded=True)
