"""Flask's JSON responses through orjson: several times faster than the standard library on prediction bodies.

Keys keep their insertion order (probabilities in class-id order) and output is compact. Request bodies are
read by serving.json_body.
"""

from __future__ import annotations

import orjson
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj).decode()

    def response(self, *args, **kwargs):
        body = orjson.dumps(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(body, mimetype="application/json")
