"""The dashboard's own files: stylesheet, script and icon (``clinic/static``), from memory."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("clinic").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


class StaticFiles:
    """``/static/{name}``: the files read once at start, served without a session."""

    def __init__(self) -> None:
        self.files = _static_files()

    async def static_file(self, request: Request) -> Response:
        found = self.files.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        data, media_type = found
        return Response(data, media_type=media_type, headers={"cache-control": "max-age=300"})

    def routes(self) -> list[Route]:
        return [Route("/static/{name}", self.static_file, methods=["GET"])]
