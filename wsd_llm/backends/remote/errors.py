"""Errors of the remote backend: one family, so callers can catch ``RemoteError`` alone."""

from __future__ import annotations


class RemoteError(RuntimeError):
    """Something went wrong talking to a remote OpenAI-compatible endpoint."""


class RemoteConnectionError(RemoteError):
    """The endpoint could not be reached, or did not answer in time."""


class RemoteStatusError(RemoteError):
    """The endpoint answered with an HTTP error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class RemoteResponseError(RemoteError):
    """The endpoint answered, but not with what the OpenAI API promises (malformed JSON, missing fields)."""


class RemoteCapabilityError(RemoteError):
    """The endpoint lacks a feature WSD needs (for a base model: log-probabilities of the prompt)."""
