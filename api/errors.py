"""Error bodies: every rejected request answers ``{"error": "<ClassName>", "detail": "..."}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import AppError


def error_body(name: str, detail: str) -> dict[str, str]:
    return {"error": name, "detail": detail}


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {
            404: "NotFoundError",
            405: "MethodNotAllowedError",
            413: "PayloadTooLargeError",
            429: "RateLimitedError",
        }
        name = names.get(exc.status_code, "HTTPError")
        detail = str(exc.detail)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read a JSON body at all (bad UTF-8, nesting past the parser's
            # recursion limit, an integer past Python's digit limit): name the cause.
            name = "InvalidJsonError"
            detail = f"the body is not valid JSON: {type(exc.__cause__).__name__}"
            reason = str(exc.__cause__)[:200]
            detail += f": {reason}" if reason else ""
        return JSONResponse(
            error_body(name, detail), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("RequestValidationError", describe_validation(exc)), status_code=422
        )


# -- the error responses in OpenAPI ----------------------------------------------------------


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    error: str = Field(description="the error's name, e.g. NotFoundError")
    detail: str = Field(description="what went wrong and how to fix it")


_DESCRIPTIONS = {
    400: "The body is not JSON, or not a JSON object",
    401: "No credential, or an unknown or revoked one",
    403: "The credential does not grant this on this organization's resources",
    404: "Unknown resource",
    409: "Conflicts with the current state",
    413: "The body is larger than BACKLINE_MAX_BODY_BYTES",
    422: "A field is missing or invalid; `detail` names it",
    429: "Too many failed authentications from this address; see Retry-After",
    502: "An upstream service answered with an error",
    503: "A dependency is not available yet",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """For a route decorator's ``responses``: the error codes it answers besides the usual ones
    (see ``_route_codes``), each with the error body."""
    return {code: {"description": _DESCRIPTIONS.get(code, "Error")} for code in codes}


def _shape_codes(operation: dict[str, Any]) -> set[int]:
    """The error codes any operation of this shape can answer, whatever its code does."""
    codes: set[int] = set()
    where = {p.get("in") for p in operation.get("parameters", [])}
    body = "requestBody" in operation
    if where & {"path", "query"} or body:
        codes.add(422)  # request validation
    if "path" in where:
        codes.add(404)  # a path parameter that names nothing, or holds a '/'
    if body:
        codes |= {400, 413}  # a body that is not JSON at all; one over the size limit
    return codes


def install_openapi_errors(app: FastAPI) -> None:
    """Document the error body, not FastAPI's default validation shape, for every error code an
    operation can answer: those of its shape, plus those its route or router declares."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation["responses"]
                declared = {int(c) for c in responses if c.isdigit() and 400 <= int(c) < 500}
                for code in sorted(_shape_codes(operation) | declared):
                    description = responses.get(str(code), {}).get("description")
                    if code == 422 or not description:
                        description = _DESCRIPTIONS.get(code, "Error")
                    responses[str(code)] = {"description": description, "content": content}
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
