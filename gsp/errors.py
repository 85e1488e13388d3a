"""Control-plane errors. A :class:`UserError` is printed as one line, no traceback.

    GspError
    └── UserError          the user can fix it: bad option, unreachable broker, port in use
        └── NotFound       a named thing does not exist
"""

from __future__ import annotations

__all__ = ["GspError", "NotFound", "UserError"]


class GspError(Exception):
    """Base of control-plane errors."""


class UserError(GspError):
    """A mistake or an environment problem the user can fix; shown as one line."""


class NotFound(UserError):
    """A named object (subscription, dataset, subject) does not exist."""
