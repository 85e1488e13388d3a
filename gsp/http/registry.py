"""Confluent Schema Registry's REST API over a :class:`~gsp.governance.registry.store.RegistryStore`.

Mount it at the root of the control plane's aiohttp server, beside its other routes::

    application([*registry_routes(RegistryStore(engine)), ...], title=...)

Paths, bodies, status codes and ``error_code`` numbers follow Confluent's, so
its serializers and third-party clients work unchanged. Only AVRO schemas are
stored. The store is synchronous; every call runs in a worker thread so a
slow database never stalls the event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gsp.governance.identity import Forbidden, Unauthenticated
from gsp.governance.registry.errors import InvalidCompatibilityLevel, InvalidSchema, RegistryError, SchemaNotFound
from gsp.governance.registry.store import RegistryStore
from gsp.http.errors import BadRequest
from gsp.http.routes import Call, InvalidBody, NotAnObject, Query, Route, in_thread

__all__ = ["CONTENT_TYPE", "CompatibilityRequest", "ConfluentError", "SchemaRequest", "registry_routes"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# aiohttp reports a missing Content-Type as application/octet-stream; Confluent accepts it too.
_BODY_TYPES = (CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream")

logger = logging.getLogger(__name__)


class _RegistryBody(BaseModel):
    # Strict like every body, but open: Confluent's clients send fields this registry does not use (metadata, ruleSet).
    model_config = ConfigDict(strict=True, extra="ignore")
    @classmethod
    def refused(cls, exc: InvalidBody) -> RegistryError:
        """The registry error a body of the wrong shape is answered with, as Confluent does."""
        raise NotImplementedError


class SchemaRequest(_RegistryBody):
    """A schema to register, look up or test for compatibility."""

    schema_: str = Field(alias="schema", description="the Avro schema as a JSON-encoded string")
    schemaType: str | None = Field(default=None, description="AVRO, the only type stored")
    references: list[Any] | None = Field(default=None, description="not supported; inline referenced types")

    @classmethod
    def refused(cls, exc: InvalidBody) -> RegistryError:
        return InvalidSchema(f"Request body needs 'schema': the Avro schema as a JSON-encoded string ({exc})")


class CompatibilityRequest(_RegistryBody):
    """A compatibility level to set."""

    compatibility: str = Field(description="NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL "
                                           "or FULL_TRANSITIVE")

    @classmethod
    def refused(cls, exc: InvalidBody) -> RegistryError:
        return InvalidCompatibilityLevel(exc.given("compatibility"))


class ConfluentError(BaseModel):
    """The registry's error body, in Confluent's shape: its clients branch on ``error_code``."""

    error_code: int
    message: str


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type=CONTENT_TYPE)


def _confluent(exc: Exception, status: int) -> web.Response:
    """Errors in Confluent's shape, ``{"error_code": ..., "message": ...}``, which its clients branch on."""
    if isinstance(exc, InvalidBody) and issubclass(exc.model, _RegistryBody):
        exc = exc.model.refused(exc)
    if isinstance(exc, RegistryError):
        return _json({"error_code": exc.error_code, "message": str(exc)}, status=exc.http_status)
    if isinstance(exc, NotAnObject):
        return _json({"error_code": 422, "message": "Request body must be a JSON object"}, status=422)
    if isinstance(exc, BadRequest):
        message = str(exc)
        return _json({"error_code": status, "message": message[:1].upper() + message[1:]}, status=status)
    if isinstance(exc, Unauthenticated | Forbidden):  # Confluent's 40101 and 40301
        return _json({"error_code": status * 100 + 1, "message": str(exc)}, status=status)
    # Anything else is the data store failing (the wrapper has logged it); statements hold no records.
    return _json({"error_code": 50001, "message": "Error in the backend data store"}, status=500)


def _schema_of(body: SchemaRequest) -> tuple[str, str]:
    if body.references:
        raise InvalidSchema("Schema references are not supported; inline the referenced types")
    return body.schema_, body.schemaType or "AVRO"


def _schema_id(call: Call) -> int:
    text = call.path["id"]
    # isdigit alone takes "²" and other Unicode digits, which int() refuses.
    if not (text.isascii() and text.isdigit()):
        raise SchemaNotFound(f"Schema {text} not found")
    return int(text)


_DELETED = Query("deleted", "include soft-deleted ones", kind="boolean", default=False)
_PERMANENT = Query("permanent", "delete for good what was soft-deleted before", kind="boolean", default=False)


def registry_routes(store: RegistryStore) -> list[Route]:
    """The registry's endpoints, in Confluent's paths, bodies and error codes."""

    async def list_subjects(call: Call) -> web.Response:
        return _json(await in_thread(store.subjects, include_deleted=call.query["deleted"]))

    async def list_versions(call: Call) -> web.Response:
        return _json(await in_thread(store.versions, call.path["subject"], include_deleted=call.query["deleted"]))

    async def get_version(call: Call) -> web.Response:
        found = await in_thread(store.get_version, call.path["subject"], call.path["version"],
                                include_deleted=call.query["deleted"])
        return _json({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema})

    async def get_version_schema(call: Call) -> web.Response:
        found = await in_thread(store.get_version, call.path["subject"], call.path["version"])
        return web.Response(text=found.schema, content_type=CONTENT_TYPE)

    async def register(call: Call) -> web.Response:
        subject = call.path["subject"]
        schema_id = await in_thread(store.register, subject, *_schema_of(call.body))
        logger.info("schema id %d is registered under subject %s", schema_id, subject)
        return _json({"id": schema_id})

    async def lookup(call: Call) -> web.Response:
        found = await in_thread(store.lookup, call.path["subject"], *_schema_of(call.body))
        return _json({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema})

    async def delete_subject(call: Call) -> web.Response:
        subject, permanent = call.path["subject"], call.query["permanent"]
        deleted = await in_thread(store.delete_subject, subject, permanent=permanent)
        logger.info("subject %s deleted (permanent=%s): versions %s", subject, permanent, deleted)
        return _json(deleted)

    async def delete_version(call: Call) -> web.Response:
        subject, permanent = call.path["subject"], call.query["permanent"]
        deleted = await in_thread(store.delete_version, subject, call.path["version"], permanent=permanent)
        logger.info("subject %s version %d deleted (permanent=%s)", subject, deleted, permanent)
        return _json(deleted)

    async def schema_by_id(call: Call) -> web.Response:
        return _json({"schema": (await in_thread(store.schema_by_id, _schema_id(call))).schema})

    async def raw_schema_by_id(call: Call) -> web.Response:
        found = await in_thread(store.schema_by_id, _schema_id(call))
        return web.Response(text=found.schema, content_type=CONTENT_TYPE)

    async def schema_versions(call: Call) -> web.Response:
        pairs = await in_thread(store.subject_versions_of, _schema_id(call), include_deleted=call.query["deleted"])
        return _json([{"subject": subject, "version": version} for subject, version in pairs])

    async def schema_types(call: Call) -> web.Response:
        return _json(["AVRO"])

    async def compatibility(call: Call) -> web.Response:
        schema, schema_type = _schema_of(call.body)
        messages = await in_thread(store.test_compatibility, call.path["subject"], schema, call.path.get("version"),
                                   schema_type)
        answer: dict[str, Any] = {"is_compatible": not messages}
        if call.query["verbose"]:
            answer["messages"] = messages
        return _json(answer)

    async def get_global_config(call: Call) -> web.Response:
        return _json({"compatibilityLevel": await in_thread(store.get_config)})

    async def set_global_config(call: Call) -> web.Response:
        level = await in_thread(store.set_config, call.body.compatibility)
        logger.info("global compatibility level set to %s", level)
        return _json({"compatibility": level})

    async def delete_global_config(call: Call) -> web.Response:
        return _json({"compatibilityLevel": await in_thread(store.delete_config)})

    async def get_subject_config(call: Call) -> web.Response:
        level = await in_thread(store.get_config, call.path["subject"],
                                default_to_global=call.query["defaultToGlobal"])
        return _json({"compatibilityLevel": level})

    async def set_subject_config(call: Call) -> web.Response:
        subject = call.path["subject"]
        level = await in_thread(store.set_config, call.body.compatibility, subject)
        logger.info("compatibility level of subject %s set to %s", subject, level)
        return _json({"compatibility": level})

    async def delete_subject_config(call: Call) -> web.Response:
        return _json({"compatibilityLevel": await in_thread(store.delete_config, call.path["subject"])})

    def route(method: str, path: str, handler: Any, summary: str, responds: str, *, tag: str = "schema registry",
              body: type[_RegistryBody] | None = None, query: tuple[Query, ...] = ()) -> Route:
        return Route(method, path, handler, summary=summary, tag=tag, body=body, responds=responds, query=query,
                     media_types=_BODY_TYPES if body else (), errors=_confluent, error_body=ConfluentError,
                     error_media_type=CONTENT_TYPE)

    verbose = Query("verbose", "list why the schema is incompatible", kind="boolean", default=False)
    to_global = Query("defaultToGlobal", "answer the global level when the subject has none", kind="boolean",
                      default=False)
    # python-schema-registry-client asks for the global level at "config/", hence both spellings.
    global_config = [
        route(method, path, handler, summary, responds, tag="compatibility", body=body)
        for path in ("/config", "/config/")
        for method, handler, summary, responds, body in (
            ("GET", get_global_config, "The global compatibility level", "{compatibilityLevel}", None),
            ("PUT", set_global_config, "Set the global compatibility level", "{compatibility}", CompatibilityRequest),
            ("DELETE", delete_global_config, "Reset the global level to BACKWARD", "the level it had", None))
    ]
    return [
        route("GET", "/subjects", list_subjects, "Subjects", "subject names", query=(_DELETED,)),
        route("GET", "/subjects/{subject}/versions", list_versions, "A subject's versions", "version numbers",
              query=(_DELETED,)),
        route("GET", "/subjects/{subject}/versions/{version}", get_version, "One version (a number or latest)",
              "{subject, version, id, schema}", query=(_DELETED,)),
        route("GET", "/subjects/{subject}/versions/{version}/schema", get_version_schema, "One version's schema",
              "the schema itself"),
        route("POST", "/subjects/{subject}/versions", register, "Register a schema under a subject", "{id}",
              body=SchemaRequest),
        route("POST", "/subjects/{subject}", lookup, "Find the version holding a schema",
              "{subject, version, id, schema}", body=SchemaRequest),
        route("DELETE", "/subjects/{subject}", delete_subject, "Delete a subject (soft, then permanent)",
              "the deleted versions", query=(_PERMANENT,)),
        route("DELETE", "/subjects/{subject}/versions/{version}", delete_version,
              "Delete a version (soft, then permanent)", "the deleted version", query=(_PERMANENT,)),
        route("GET", "/schemas/ids/{id}", schema_by_id, "A schema by its global id", "{schema}"),
        route("GET", "/schemas/ids/{id}/schema", raw_schema_by_id, "A schema by its global id, as itself",
              "the schema itself"),
        route("GET", "/schemas/ids/{id}/versions", schema_versions, "Subjects and versions holding a schema id",
              "[{subject, version}]", query=(_DELETED,)),
        route("GET", "/schemas/types", schema_types, "Schema types stored", '["AVRO"]'),
        route("POST", "/compatibility/subjects/{subject}/versions/{version}", compatibility,
              "Is a schema compatible with one version", "{is_compatible, messages?}", tag="compatibility",
              body=SchemaRequest, query=(verbose,)),
        route("POST", "/compatibility/subjects/{subject}/versions", compatibility,
              "Is a schema compatible with the versions the level checks", "{is_compatible, messages?}",
              tag="compatibility", body=SchemaRequest, query=(verbose,)),
        *global_config,
        route("GET", "/config/{subject}", get_subject_config, "A subject's compatibility level",
              "{compatibilityLevel}", tag="compatibility", query=(to_global,)),
        route("PUT", "/config/{subject}", set_subject_config, "Set a subject's compatibility level",
              "{compatibility}", tag="compatibility", body=CompatibilityRequest),
        route("DELETE", "/config/{subject}", delete_subject_config, "Remove a subject's own level",
              "the level it had", tag="compatibility"),
    ]
