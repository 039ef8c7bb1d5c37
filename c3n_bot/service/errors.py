"""Errors a use case raises for its caller to turn into a response."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a caller may show to the user."""


class NotFound(ServiceError):
    """The record does not exist, or is outside the caller's centers (never say which)."""


class InvalidInput(ServiceError):
    """A field is wrong; `field` names it for a 422 response."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(ServiceError):
    """The request clashes with existing data (a duplicate, a used token)."""
