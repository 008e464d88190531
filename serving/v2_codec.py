"""Open Inference Protocol (KServe V2) tensors <-> NumPy: the datatype table, JSON and binary (de)serialisation.

No Flask here: bytes and dicts in, arrays out (and back). The binary tensor data
extension (Triton's): a JSON header of `Inference-Header-Content-Length` bytes, then
each binary tensor's raw little-endian bytes in order; a BYTES tensor's elements are
each a 4-byte little-endian length and the bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import orjson

from serving import json_body
from serving.errors import ServiceError

# V2 datatype -> NumPy dtype (little-endian, as the binary extension sends them); BYTES elements are `bytes`
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(bool),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
ONNX_TYPES = {"tensor(bool)": "BOOL", "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64"}
ONNX_TYPES |= {f"tensor({k.lower()})": k for k in DATATYPES if k[0] in "UI"}  # tensor(uint8) -> UINT8 ...
ONNX_TYPES["tensor(string)"] = "BYTES"
LENGTH = struct.Struct("<I")  # a BYTES element's length prefix


class TensorError(ServiceError):
    """A request or tensor that cannot be read as sent."""

    def __init__(self, message: str):
        super().__init__("bad_tensor", message)


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray  # reshaped to `shape`; dtype DATATYPES[datatype]
    binary: bool  # it came in the binary extension (BYTES: raw elements; JSON: strings)


def split_body(body: bytes, header_length: str | None) -> tuple[dict, memoryview]:
    """A request body -> (its JSON header, the binary tensor data after it)."""
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise TensorError(f"Inference-Header-Content-Length must be an integer, not {header_length!r}") from None
        if not 0 < size <= len(body):
            raise TensorError(f"Inference-Header-Content-Length is {size} but the body has {len(body)} bytes")
    try:
        header = json_body.loads_inference_request(memoryview(body)[:size])
    except ValueError as error:
        raise TensorError(f"the inference request is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise TensorError("the inference request must be a JSON object")
    return header, memoryview(body)[size:]


def decode_input(spec, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    """One request input (`spec`, the JSON object) -> (Tensor, offset of the next binary tensor)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise TensorError('each input must be an object with a "name"')
    name, datatype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
    if not isinstance(datatype, str) or datatype not in DATATYPES:  # a list or an object is not hashable
        raise TensorError(f"input {name!r}: unknown datatype {datatype!r}; one of {', '.join(DATATYPES)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise TensorError(f"input {name!r}: shape must be a list of non-negative integers, not {shape!r}")
    count = math.prod(shape)
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TensorError(f"input {name!r}: parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise TensorError(
                f"input {name!r}: binary_data_size {size!r} runs past the {len(binary)} bytes of binary data"
            )
        array = _from_binary(name, datatype, binary[offset : offset + size], count)
        offset += size
    elif "data" in spec:
        array = _from_json(name, datatype, spec["data"], count)
    else:
        raise TensorError(f'input {name!r} has neither "data" nor a binary_data_size parameter')
    return Tensor(name, datatype, tuple(shape), array.reshape(shape), size is not None), offset


def _from_binary(name: str, datatype: str, data: memoryview, count: int) -> np.ndarray:
    if datatype == "BYTES":
        elements, position = [], 0
        while position < len(data):
            if position + 4 > len(data):
                raise TensorError(f"input {name!r}: a BYTES element's 4-byte length prefix is cut off")
            (length,) = LENGTH.unpack_from(data, position)
            position += 4
            if position + length > len(data):
                raise TensorError(f"input {name!r}: a BYTES element of {length} bytes runs past the data")
            elements.append(bytes(data[position : position + length]))
            position += length
            if len(elements) > count:  # stop early: millions of empty elements would take seconds
                raise TensorError(f"input {name!r}: more than the {count} elements the shape has")
        array = np.empty(len(elements), dtype=object)
        array[:] = elements
    else:
        dtype = DATATYPES[datatype]
        if len(data) != count * dtype.itemsize:
            raise TensorError(
                f"input {name!r}: {len(data)} bytes of binary data, the shape needs "
                f"{count} x {dtype.itemsize} = {count * dtype.itemsize}"
            )
        array = np.frombuffer(data, dtype=dtype)  # a read-only view of the request body, copied only if misaligned
        if not array.flags.aligned:  # where the JSON header ends: numpy checks aligned values about twice as fast
            array = array.copy()
    if array.size != count:
        raise TensorError(f"input {name!r}: {array.size} elements, the shape needs {count}")
    return array


def _from_json(name: str, datatype: str, data, count: int) -> np.ndarray:
    if not isinstance(data, (list, np.ndarray)):  # an array: numbers read by serving.json_body
        data = [data]  # a lone scalar
    if datatype == "BYTES":
        flat = _flatten(data)
        if not all(isinstance(element, str) for element in flat):
            raise TensorError(f"input {name!r}: BYTES data in JSON must be strings")
        array = np.empty(len(flat), dtype=object)
        array[:] = [element.encode() for element in flat]
    else:
        dtype = DATATYPES[datatype]
        try:  # nested or flat lists of numbers; numpy checks that rows are even
            values = np.asarray(data).ravel()
        except (ValueError, TypeError, RecursionError) as error:
            raise TensorError(f"input {name!r}: data is not an even array of {datatype} values ({error})") from error
        kinds = "b" if dtype.kind == "b" else "iu" if dtype.kind in "iu" else "iuf"  # no strings, no true as 1.0
        if values.size and values.dtype.kind not in kinds:
            raise TensorError(f"input {name!r}: data is not an even array of {datatype} values ({values.dtype} data)")
        if values.size and dtype.kind in "iu":
            bounds = np.iinfo(dtype)
            if values.min() < bounds.min or values.max() > bounds.max:  # astype would wrap around silently
                raise TensorError(f"input {name!r}: {datatype} values must be in {bounds.min}..{bounds.max}")
        array = values.astype(dtype)
    if array.size != count:
        raise TensorError(f"input {name!r}: {array.size} elements in data, the shape needs {count}")
    return array


def _flatten(data: list) -> list:
    """Nested lists -> their elements in row-major order (without recursion: JSON may nest ~1000 deep)."""
    flat, stack = [], [iter(data)]
    while stack:
        for element in stack[-1]:
            if isinstance(element, list):
                stack.append(iter(element))
                break
            flat.append(element)
        else:
            stack.pop()
    return flat


def encode_output(name: str, datatype: str, array: np.ndarray, binary: bool) -> tuple[dict, bytes | None]:
    """An output array -> (its JSON object, its raw bytes when sent in the binary extension)."""
    tensor = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == "BYTES":
        elements = [e if isinstance(e, bytes) else str(e).encode() for e in array.ravel().tolist()]
        if not binary:
            tensor["data"] = [element.decode() for element in elements]
            return tensor, None
        raw = b"".join(LENGTH.pack(len(element)) + element for element in elements)
    else:
        contiguous = np.ascontiguousarray(array, dtype=DATATYPES[datatype])
        if not binary:
            tensor["data"] = contiguous.ravel().tolist()
            return tensor, None
        raw = contiguous.tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def encode_response(header: dict, raw: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: plain JSON, or JSON then binary outputs with the length header."""
    text = orjson.dumps(header)
    if not raw:
        return text, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(text))}
    return text + b"".join(raw), headers
