"""The OpenAPI 3.1 document of an application, derived from its route declarations.

Request bodies are the routes' pydantic models as JSON Schema 2020-12, which
OpenAPI 3.1 takes as it is; models shared by several routes appear once under
``components.schemas``. Each operation names the roles `gsp.http.access.MATRIX` allows it
(``x-gsp-roles``) and whether it needs a credential (``security``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gsp.http.access import MATRIX, METRICS, PUBLIC
from gsp.http.routes import Route

__all__ = ["openapi"]

_PATH_PARAMETER = re.compile(r"{(\w+)}")


def openapi(routes: Iterable[Route], *, title: str, version: str, public_metrics: bool = True) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in routes:
        # Every route can refuse a request (404, 409, 422, 503, ...), always in its error body: "default" says so
        # without listing, per route, statuses that the one mapping in gsp.http.errors decides.
        schemas[route.error_body.__name__] = route.error_body.model_json_schema()
        error = {"description": "an error; the body says what was wrong", "content": {
            route.error_media_type: {"schema": {"$ref": f"#/components/schemas/{route.error_body.__name__}"}}}}
        operation: dict[str, Any] = {"summary": route.summary, "tags": [route.tag],
                                     "responses": {str(route.status): {"description": route.responds},
                                                   "default": error}}
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _PATH_PARAMETER.findall(route.path)]
        parameters += [{"name": q.name, "in": "query", "required": False, "description": q.description,
                        "schema": {"type": q.kind} | ({} if q.default is None else {"default": q.default})}
                       for q in route.query]
        if parameters:
            operation["parameters"] = parameters
        allowed = MATRIX.get((route.method, route.path), PUBLIC)
        public = allowed == PUBLIC or (allowed == METRICS and public_metrics)
        operation["security"] = [] if public else [{"bearer": []}, {"basic": []}]
        operation["x-gsp-roles"] = sorted(allowed) if isinstance(allowed, frozenset) else allowed
        if route.body is not None:
            schema = route.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[route.body.__name__] = schema
            ref = {"$ref": f"#/components/schemas/{route.body.__name__}"}
            operation["requestBody"] = {"required": True, "content": {
                media: {"schema": ref} for media in (route.media_types or ("application/json",))}}
            operation["responses"]["400"] = error | {"description": "the body is not JSON, or a field is missing, "
                                                                     "unknown or of the wrong type; the message names it"}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {"openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": _SECURITY}}


# A token as a bearer credential, or as HTTP Basic the way Confluent's registry clients send one.
_SECURITY = {"bearer": {"type": "http", "scheme": "bearer", "description": "gsp_<key id>_<secret>"},
             "basic": {"type": "http", "scheme": "basic", "description": "user: the key id; password: the secret"}}
