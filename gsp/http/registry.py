"""Confluent Schema Registry's REST API over a :class:`~gsp.governance.registry.store.RegistryStore`.

Mount it at the root of the control plane's aiohttp server, beside its other routes::

    app.add_routes(registry_routes(RegistryStore(engine)))

Paths, bodies, status codes and ``error_code`` numbers follow Confluent's, so
its serializers and third-party clients work unchanged. Only AVRO schemas are
stored. The store is synchronous; every call runs in a worker thread so a
slow database never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from gsp.governance.registry.errors import InvalidCompatibilityLevel, InvalidSchema, RegistryError, SchemaNotFound
from gsp.governance.registry.store import RegistryStore

__all__ = ["CONTENT_TYPE", "registry_routes"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# aiohttp reports a missing Content-Type as application/octet-stream; Confluent accepts it too.
_BODY_TYPES = frozenset({
    CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream",
})

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
logger = logging.getLogger(__name__)


class _BadRequest(Exception):
    """A request the API cannot even read (wrong media type, malformed JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type=CONTENT_TYPE)


def _error(status: int, error_code: int, message: str) -> web.Response:
    return _json({"error_code": error_code, "message": message}, status=status)


def _handled(handler: _Handler) -> _Handler:
    """Answer registry and request errors the way Confluent does, never with a traceback."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RegistryError as exc:
            return _error(exc.http_status, exc.error_code, str(exc))
        except _BadRequest as exc:
            return _error(exc.status, exc.status, str(exc))
        except SQLAlchemyError:
            # Statements hold only subject names and schemas, never records, so the detail may be logged.
            logger.exception("schema registry data store failed on %s %s", request.method, request.path)
            return _error(500, 50001, "Error in the backend data store")

    return answer


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type not in _BODY_TYPES:
        raise _BadRequest(415, f"Unsupported Content-Type '{request.content_type}'; send {CONTENT_TYPE}")
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        raise _BadRequest(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest(422, "Request body must be a JSON object")
    return body


def _schema_of(body: dict[str, Any]) -> tuple[str, str]:
    """(schema, schemaType) from a registration, lookup or compatibility request body."""
    schema, schema_type = body.get("schema"), body.get("schemaType") or "AVRO"
    if not isinstance(schema, str):
        raise InvalidSchema("Request body needs 'schema': the Avro schema as a JSON-encoded string")
    if not isinstance(schema_type, str):
        raise InvalidSchema("'schemaType' must be a string such as \"AVRO\"")
    if body.get("references"):
        raise InvalidSchema("Schema references are not supported; inline the referenced types")
    return schema, schema_type


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def _schema_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit():
        raise SchemaNotFound(f"Schema {text} not found")
    return int(text)


def registry_routes(store: RegistryStore) -> web.RouteTableDef:
    """The registry's endpoints, to add to an application with ``app.add_routes``."""
    routes = web.RouteTableDef()
    run = asyncio.to_thread

    @routes.get("/subjects")
    @_handled
    async def list_subjects(request: web.Request) -> web.StreamResponse:
        return _json(await run(store.subjects, include_deleted=_flag(request, "deleted")))

    @routes.get("/subjects/{subject}/versions")
    @_handled
    async def list_versions(request: web.Request) -> web.StreamResponse:
        subject = request.match_info["subject"]
        return _json(await run(store.versions, subject, include_deleted=_flag(request, "deleted")))

    @routes.get("/subjects/{subject}/versions/{version}")
    @_handled
    async def get_version(request: web.Request) -> web.StreamResponse:
        found = await run(
            store.get_version, request.match_info["subject"], request.match_info["version"],
            include_deleted=_flag(request, "deleted"),
        )
        return _json({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema})

    @routes.get("/subjects/{subject}/versions/{version}/schema")
    @_handled
    async def get_version_schema(request: web.Request) -> web.StreamResponse:
        found = await run(store.get_version, request.match_info["subject"], request.match_info["version"])
        return web.Response(text=found.schema, content_type=CONTENT_TYPE)

    @routes.post("/subjects/{subject}/versions")
    @_handled
    async def register(request: web.Request) -> web.StreamResponse:
        subject = request.match_info["subject"]
        schema, schema_type = _schema_of(await _body(request))
        schema_id = await run(store.register, subject, schema, schema_type)
        logger.info("schema id %d is registered under subject %s", schema_id, subject)
        return _json({"id": schema_id})

    @routes.post("/subjects/{subject}")
    @_handled
    async def lookup(request: web.Request) -> web.StreamResponse:
        schema, schema_type = _schema_of(await _body(request))
        found = await run(store.lookup, request.match_info["subject"], schema, schema_type)
        return _json({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema})

    @routes.delete("/subjects/{subject}")
    @_handled
    async def delete_subject(request: web.Request) -> web.StreamResponse:
        subject, permanent = request.match_info["subject"], _flag(request, "permanent")
        deleted = await run(store.delete_subject, subject, permanent=permanent)
        logger.info("subject %s deleted (permanent=%s): versions %s", subject, permanent, deleted)
        return _json(deleted)

    @routes.delete("/subjects/{subject}/versions/{version}")
    @_handled
    async def delete_version(request: web.Request) -> web.StreamResponse:
        subject, permanent = request.match_info["subject"], _flag(request, "permanent")
        deleted = await run(store.delete_version, subject, request.match_info["version"], permanent=permanent)
        logger.info("subject %s version %d deleted (permanent=%s)", subject, deleted, permanent)
        return _json(deleted)

    @routes.get("/schemas/ids/{id}")
    @_handled
    async def schema_by_id(request: web.Request) -> web.StreamResponse:
        return _json({"schema": (await run(store.schema_by_id, _schema_id(request))).schema})

    @routes.get("/schemas/ids/{id}/schema")
    @_handled
    async def raw_schema_by_id(request: web.Request) -> web.StreamResponse:
        found = await run(store.schema_by_id, _schema_id(request))
        return web.Response(text=found.schema, content_type=CONTENT_TYPE)

    @routes.get("/schemas/ids/{id}/versions")
    @_handled
    async def schema_versions(request: web.Request) -> web.StreamResponse:
        pairs = await run(store.subject_versions_of, _schema_id(request), include_deleted=_flag(request, "deleted"))
        return _json([{"subject": subject, "version": version} for subject, version in pairs])

    @routes.get("/schemas/types")
    @_handled
    async def schema_types(request: web.Request) -> web.StreamResponse:
        return _json(["AVRO"])

    async def compatibility(request: web.Request, version: str | None) -> web.StreamResponse:
        schema, schema_type = _schema_of(await _body(request))
        messages = await run(store.test_compatibility, request.match_info["subject"], schema, version, schema_type)
        answer: dict[str, Any] = {"is_compatible": not messages}
        if _flag(request, "verbose"):
            answer["messages"] = messages
        return _json(answer)

    @routes.post("/compatibility/subjects/{subject}/versions/{version}")
    @_handled
    async def compatibility_with_version(request: web.Request) -> web.StreamResponse:
        return await compatibility(request, request.match_info["version"])

    @routes.post("/compatibility/subjects/{subject}/versions")
    @_handled
    async def compatibility_with_all(request: web.Request) -> web.StreamResponse:
        return await compatibility(request, None)

    # python-schema-registry-client asks for the global level at "config/", hence both spellings.
    @routes.get("/config")
    @routes.get("/config/")
    @_handled
    async def get_global_config(request: web.Request) -> web.StreamResponse:
        return _json({"compatibilityLevel": await run(store.get_config)})

    @routes.put("/config")
    @routes.put("/config/")
    @_handled
    async def set_global_config(request: web.Request) -> web.StreamResponse:
        level = await run(store.set_config, _level_of(await _body(request)))
        logger.info("global compatibility level set to %s", level)
        return _json({"compatibility": level})

    @routes.delete("/config")
    @routes.delete("/config/")
    @_handled
    async def delete_global_config(request: web.Request) -> web.StreamResponse:
        return _json({"compatibilityLevel": await run(store.delete_config)})

    @routes.get("/config/{subject}")
    @_handled
    async def get_subject_config(request: web.Request) -> web.StreamResponse:
        level = await run(
            store.get_config, request.match_info["subject"], default_to_global=_flag(request, "defaultToGlobal"),
        )
        return _json({"compatibilityLevel": level})

    @routes.put("/config/{subject}")
    @_handled
    async def set_subject_config(request: web.Request) -> web.StreamResponse:
        subject = request.match_info["subject"]
        level = await run(store.set_config, _level_of(await _body(request)), subject)
        logger.info("compatibility level of subject %s set to %s", subject, level)
        return _json({"compatibility": level})

    @routes.delete("/config/{subject}")
    @_handled
    async def delete_subject_config(request: web.Request) -> web.StreamResponse:
        return _json({"compatibilityLevel": await run(store.delete_config, request.match_info["subject"])})

    return routes


def _level_of(body: dict[str, Any]) -> str:
    level = body.get("compatibility")
    if not isinstance(level, str):
        raise InvalidCompatibilityLevel(level)
    return level
