"""Schema registry errors, each carrying Confluent's ``error_code`` and HTTP status.

Clients written for Confluent's registry branch on these numbers, so they are
part of the contract, not decoration:

    RegistryError                    500 / 50001  the data store failed
    ├── SubjectNotFound              404 / 40401
    ├── VersionNotFound              404 / 40402
    ├── SchemaNotFound               404 / 40403
    ├── ConfigNotFound               404 / 40408  subject has no own compatibility level
    ├── DeletionRefused              404 / 40404..40407  soft/hard delete done in the wrong order
    ├── IncompatibleSchema           409 / 409
    ├── InvalidSchema                422 / 42201
    ├── InvalidVersion               422 / 42202
    └── InvalidCompatibilityLevel    422 / 42203
"""

from __future__ import annotations

__all__ = [
    "ConfigNotFound",
    "DeletionRefused",
    "IncompatibleSchema",
    "InvalidCompatibilityLevel",
    "InvalidSchema",
    "InvalidVersion",
    "RegistryError",
    "SchemaNotFound",
    "SubjectNotFound",
    "VersionNotFound",
]


class RegistryError(Exception):
    """Base of registry errors; ``str(error)`` is the message shown to the client."""

    http_status: int = 500
    error_code: int = 50001


class SubjectNotFound(RegistryError):
    http_status = 404
    error_code = 40401

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(RegistryError):
    http_status = 404
    error_code = 40402

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")


class SchemaNotFound(RegistryError):
    http_status = 404
    error_code = 40403


class ConfigNotFound(RegistryError):
    http_status = 404
    error_code = 40408

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' does not have subject-level compatibility configured"
        )


class DeletionRefused(RegistryError):
    """Confluent deletes in two steps (soft, then ``permanent=true``); one code per misstep."""

    http_status = 404

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


class IncompatibleSchema(RegistryError):
    http_status = 409
    error_code = 409

    def __init__(self, subject: str, messages: list[str]) -> None:
        super().__init__(
            f"Schema being registered is incompatible with an earlier schema for subject "
            f"'{subject}', details: {messages}"
        )
        self.messages = messages


class InvalidSchema(RegistryError):
    http_status = 422
    error_code = 42201


class InvalidVersion(RegistryError):
    http_status = 422
    error_code = 42202

    def __init__(self, version: object) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            "between [1, 2^31-1] and the string \"latest\""
        )


class InvalidCompatibilityLevel(RegistryError):
    http_status = 422
    error_code = 42203

    def __init__(self, level: object) -> None:
        super().__init__(
            f"Invalid compatibility level '{level}'. Valid values are NONE, BACKWARD, "
            "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
        )
