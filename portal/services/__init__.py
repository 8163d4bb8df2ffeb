"""Every write goes through a service: change objects, flush, audit, never commit.

The request (or the CLI command, or the job) commits once; jobs enqueued by a
service are dispatched only after that commit succeeds.
"""
from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user should read: the message is already translated."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409
