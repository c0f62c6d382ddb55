"""JSON errors for every HTTP surface: one exception type, one Flask handler set."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a machine-readable code and a message for people."""

    def __init__(self, status: int, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def register_error_handlers(app: Flask) -> None:
    """Answer every error, ours or Werkzeug's, as {"error": {"code", "message"}}."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return jsonify(err.body()), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code == 413:  # the API promises 400 for every malformed request
            body = {"error": {"code": "body_too_large", "message":
                              "request body is too large for this endpoint"}}
            return jsonify(body), 400
        code = (err.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": err.description}}), err.code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unexpected error")
        body = {"error": {"code": "internal", "message": "internal error; see the service log"}}
        return jsonify(body), 500
