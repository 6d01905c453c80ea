"""One plain sentence for every request the servers refuse: unknown routes, bodies that cannot be parsed,
and bodies that do not validate, in each server's own error shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

ErrorBody = Callable[[int, str], dict[str, Any]]
"""Builds a server's JSON error body from a status and a message."""

FASTAPI_PARSE_FAILURE = "There was an error parsing the body"


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def unreadable_body(cause: BaseException | None) -> str:
    """Why a body that FastAPI could not decode was refused."""
    if isinstance(cause, RecursionError):
        return "request body is not usable JSON: it is nested too deeply"
    if isinstance(cause, UnicodeError):
        return "request body is not valid UTF-8 text"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "request body is not usable JSON: it holds a number with too many digits"
    return "request body could not be read as JSON"


def http_message(exc: HTTPException) -> str:
    if exc.status_code == 400 and exc.detail == FASTAPI_PARSE_FAILURE:
        return unreadable_body(exc.__cause__)
    if exc.status_code == 404 and exc.detail == "Not Found":
        return "no such route on this server"
    if exc.status_code == 405 and exc.detail == "Method Not Allowed":
        return "this route does not take that HTTP method"
    return str(exc.detail)


def install_error_handlers(app: FastAPI, body: ErrorBody = error_body, validation_status: int = 422) -> None:
    """Route-level and framework errors (Starlette's included, which FastAPI's own class does not catch)."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse(body(exc.status_code, http_message(exc)), status_code=exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(body(400, "request body is not valid JSON"), status_code=400)
        return JSONResponse(body(validation_status, describe_validation(exc)), status_code=validation_status)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
