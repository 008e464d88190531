"""Request bodies as JSON: orjson (several times faster than the standard library on large tensors), and the
standard library only for what orjson refuses but Python reads (NaN, Infinity, integers past 64 bits), so
that such values reach the checks that name them instead of a syntax error.

V2 inference requests carry their tensors as long arrays of numbers: `loads_inference_request` reads those with
simdjson straight into a numpy array (no Python float per element, several times faster on a batch of 64).
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import simdjson

FLOAT_DATATYPES = ("FP16", "FP32", "FP64")  # a double holds each such value as exactly as a Python float does
EXACT_INTEGERS = 2.0**53  # below this a double holds every integer exactly, as Python's int does
# below this many bytes orjson reads a document sooner than simdjson and the checks on its values (a binary
# request's JSON header, a few hundred numbers at most)
SMALL_DOCUMENT = 2048


def loads(body: bytes | memoryview):
    """The JSON document in `body`; ValueError (with the parser's message) if it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        try:
            return json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... nested too deep
            raise ValueError(str(error)) from error


def loads_inference_request(body: bytes | memoryview, small: int = SMALL_DOCUMENT):
    """What `loads` reads, except that each input's flat array of numbers with a floating-point datatype is a
    float64 numpy array. Anything simdjson does not read as plain JSON (NaN, numbers past a double, broken
    documents, a key repeated in an object or one that simdjson cannot look up) goes through `loads`, so its
    messages and values are the same. A document under `small` bytes goes through `loads` too: sooner read there."""
    if len(body) < small:
        return loads(body)
    try:
        document = simdjson.Parser().parse(body)  # a parser per request: its values die with the request
        if not isinstance(document, simdjson.Object):
            return _python(document)
        fields = _fields(document)
        inputs = fields.get("inputs")
        return {key: [_input(spec) for spec in value] if value is inputs and isinstance(value, simdjson.Array)
                else _python(value) for key, value in fields.items()}  # fmt: skip
    except (ValueError, TypeError, LookupError, RuntimeError):  # LookupError: a key with a NUL character
        return loads(body)


def _fields(value: simdjson.Object) -> dict:
    """An object's fields, still simdjson values (items() would convert them all). simdjson's look-up finds a
    repeated key's first value, the other readers its last: such a document goes the general way."""
    keys = list(value.keys())
    if len(set(keys)) != len(keys):
        raise ValueError("a repeated key")
    return {key: value[key] for key in keys}


def _input(spec):
    """One input object; its "data" a float64 array when it is a flat array of numbers of a float datatype."""
    if not isinstance(spec, simdjson.Object):
        return _python(spec)
    fields = _fields(spec)
    data = fields.get("data")
    read = {key: _python(value) for key, value in fields.items() if key != "data"}
    if isinstance(data, simdjson.Array) and read.get("datatype") in FLOAT_DATATYPES:
        try:
            values = np.frombuffer(data.as_buffer(of_type="d"), dtype=np.float64)  # nested arrays come flattened
        except TypeError:  # not all numbers: the general path names what is wrong
            values = None
        # as many values as elements: flat (nested arrays go the general way, where numpy checks they are even);
        # magnitudes where a double rounds integers go the general way too, which reads integers exactly
        if (
            values is not None
            and len(values) == len(data)
            and values.min(initial=0) > -EXACT_INTEGERS
            and values.max(initial=0) < EXACT_INTEGERS
        ):
            read["data"] = values
            return read
    if "data" in fields:
        read["data"] = _python(data)
    return read


def _python(value):
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value
