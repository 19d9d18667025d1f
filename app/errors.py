"""Errors a person can fix: each carries the message shown to them and the HTTP status."""

from __future__ import annotations


class UserError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status


class NotFound(UserError):
    status = 404


class Forbidden(UserError):
    status = 403


class Conflict(UserError):
    """The thing asked for is already so (liking twice, following twice); nothing was changed."""

    status = 409


class TooManyAttempts(UserError):
    status = 429


class Unavailable(UserError):
    """A backend is down; nothing was changed. The person may try again shortly."""

    status = 503
