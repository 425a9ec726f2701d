"""One error hierarchy for the kernel and every addon.

Internals raise these; only the outer layers (HTTP, CLI) turn them into a status code or an exit code.
"""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base of every error the kernel knows how to present to a person."""

    status = 500
    code = "error"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class ConfigError(CrmError):
    """Bad configuration: a URL, a setting, an unreachable service."""

    code = "config"


class AddonError(CrmError):
    """An addon cannot be loaded, resolved, installed, upgraded or removed."""

    code = "addon"

    def __init__(self, addon: str, message: str) -> None:
        super().__init__(f"addon {addon!r}: {message}")
        self.addon = addon


class UserError(CrmError):
    """A refusal to show to the user, with a message id for translation."""

    status = 400
    code = "user_error"

    def __init__(self, message_id: str, message: str | None = None, **params: Any) -> None:
        super().__init__(message or message_id, **params)
        self.message_id = message_id


class ValidationError(CrmError):
    """Input that does not fit: ``fields`` maps each field name to what is wrong with it."""

    status = 422
    code = "validation"

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class NotAuthenticated(CrmError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(CrmError):
    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message, **params)
        self.field = field


class NotFound(CrmError):
    status = 404
    code = "not_found"


class Conflict(CrmError):
    status = 409
    code = "conflict"

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message, **params)
        self.field = field


class BadRequest(CrmError):
    """A request the server cannot read at all (a form body its parser refuses)."""

    status = 400
    code = "bad_request"


class TooLarge(CrmError):
    """A request body or an uploaded file past its size limit."""

    status = 413
    code = "too_large"


class PermanentJobError(CrmError):
    """Raised by an actor when retrying cannot help: the job goes straight to the failed list."""

    code = "job_failed"


class RetryLater(CrmError):
    """Raised by an actor that cannot run *yet* — the record it needs is held by another job — and is not
    failing: the job runs again after ``delay`` seconds, logged quietly, without using one of its attempts."""

    code = "job_retry_later"

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)
