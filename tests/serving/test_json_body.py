"""Request bodies as JSON: the V2 reader with its numeric arrays as numpy arrays reads every document as the general
reader does, value for value, and falls back to it for what simdjson does not read.

The documents here are small, which the V2 reader leaves to the general one (SMALL_DOCUMENT): `fast` reads them
with simdjson all the same."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.json_body import SMALL_DOCUMENT, loads, loads_inference_request


def fast(body):
    """The V2 reader's simdjson path, whatever the document's size."""
    return loads_inference_request(body, small=0)


def as_lists(document):
    """The document with numpy arrays as lists: what the general reader gives."""
    if isinstance(document, dict):
        return {key: as_lists(value) for key, value in document.items()}
    if isinstance(document, list):
        return [as_lists(value) for value in document]
    if isinstance(document, np.ndarray):
        return document.tolist()
    return document


def request(data, datatype: str = "FP32", **fields) -> bytes:
    shape = [len(data)] if isinstance(data, list) else []
    tensor = {"name": "image", "datatype": datatype, "shape": shape, "data": data, **fields}
    return json.dumps({"id": "a", "inputs": [tensor], "parameters": {"binary_data_output": False}}).encode()


FLAT = [0.0, 1.5, 255.0, -3.25e-7, 17, 0.1, 2**53 - 1, -(2**53) + 1, 1e15 + 0.5]
BODIES = {
    "flat floats and integers": request(FLAT),
    "integers a double would round": request([1.0, 2**53 + 1]),
    "a magnitude past a double's exact integers": request([1.0, 1e300]),
    "nested even rows": request([[1.0, 2.0], [3.0, 4.0]]),
    "ragged rows": request([[1.0, 2.0], [3.0]]),
    "a number beside a row": request([1.0, [2.0, 3.0]]),
    "booleans": request([1.0, True]),
    "strings": request([1.0, "2"]),
    "null": request([1.0, None]),
    "empty": request([]),
    "a lone number": request(5.0),
    "an integer datatype, past a double's precision": request([2**63 - 1, 2**53 + 1], datatype="INT64"),
    "BYTES": request(["a", "b"], datatype="BYTES"),
    "an unknown datatype": request([1.0], datatype=["FP32"]),
    "two inputs": b'{"inputs": [{"datatype": "FP32", "data": [1.0]}, {"datatype": "FP64", "data": [2]}]}',
    "an input that is not an object": b'{"inputs": [1, "x"]}',
    "inputs not a list": b'{"inputs": {"data": [1.0]}}',
    "repeated keys": b'{"inputs": [{"datatype": "FP32", "data": [1.0], "data": [2.0, 3.0]}], "id": "a", "id": "b"}',
    "not an object": b"[1, 2, 3]",
    "a key with a NUL character": b'{"inputs": [{"a\\u0000b": null, "datatype": "FP32", "data": [1.0]}]}',
    "an escaped key": b'{"inputs": [{"d\\u0061ta": [1.0, 2.0], "datatype": "FP\\u00332"}]}',
    "a key with a NUL character at the top": b'{"\\u0000": 1, "inputs": []}',
    "NaN and Infinity": b'{"inputs": [{"datatype": "FP32", "data": [NaN, Infinity, 1.0]}]}',
    "a number past a double": b'{"inputs": [{"datatype": "FP32", "data": [1e400]}]}',
    "an integer past 64 bits": b'{"inputs": [{"datatype": "INT64", "data": [18446744073709551616]}]}',
    "unicode": '{"id": "é✓", "inputs": [{"name": "ü", "datatype": "FP32", "data": [1.0]}]}'.encode(),
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_reads_what_the_general_reader_reads(body):
    body = body.encode() if isinstance(body, str) else body
    assert as_lists(fast(body)) == loads(body)
    assert as_lists(fast(memoryview(body))) == loads(body)


def test_a_flat_float_tensor_arrives_as_a_float64_array_with_every_value_exact():
    data = fast(request(FLAT))["inputs"][0]["data"]
    assert isinstance(data, np.ndarray) and data.dtype == np.float64
    assert data.tolist() == [float(value) for value in FLAT]
    random = np.random.default_rng(0).random(4096) * 255
    data = loads_inference_request(request(random.tolist()))["inputs"][0]["data"]  # large: simdjson by default
    assert np.array_equal(data, random)  # shortest round-trip repr: every double comes back bit for bit


def test_a_small_document_is_read_by_the_general_reader():
    body = request(FLAT)
    assert len(body) < SMALL_DOCUMENT
    assert loads_inference_request(body) == loads(body)
    assert isinstance(loads_inference_request(body)["inputs"][0]["data"], list)


@pytest.mark.parametrize("name", ["nested even rows", "ragged rows", "a number beside a row", "booleans", "null",
                                  "an integer datatype, past a double's precision", "integers a double would round",
                                  "a magnitude past a double's exact integers"])  # fmt: skip
def test_what_is_not_a_flat_float_array_stays_a_list_for_the_general_checks(name):
    data = fast(BODIES[name])["inputs"][0]["data"]
    assert isinstance(data, list)


def test_what_only_the_standard_library_reads_still_reaches_the_checks():
    data = fast(BODIES["NaN and Infinity"])["inputs"][0]["data"]
    assert math.isnan(data[0]) and data[1] == math.inf


def test_broken_json_gets_the_general_readers_message():
    with pytest.raises(ValueError) as general:
        loads(b'{"inputs": [1, 2')
    with pytest.raises(ValueError) as simdjson_path:
        fast(b'{"inputs": [1, 2')
    assert str(simdjson_path.value) == str(general.value)


KEYS = st.one_of(st.sampled_from(["inputs", "data", "datatype", "name", "shape", "parameters", "id"]), st.text())
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
                      max_leaves=30)  # fmt: skip
INPUTS = st.fixed_dictionaries(
    {"datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "UINT8"]),
     "data": st.lists(st.one_of(st.floats(allow_nan=False), st.integers(-(2**64), 2**64)), max_size=20) | VALUES},
    optional={"name": st.text(), "shape": VALUES, "parameters": VALUES},
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"inputs": st.lists(INPUTS | VALUES, max_size=3)}, optional={"id": VALUES}), KEYS, VALUES)
def test_any_document_reads_as_the_general_reader_reads_it(document, key, value):
    body = json.dumps({**document, key: value} if key != "inputs" else document).encode()
    assert as_lists(fast(body)) == loads(body)
