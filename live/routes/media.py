"""``GET /media/{path}``: product images and other media files from ``{data_dir}/media/``.

Only plain files with a known media extension under that folder are served: no dot-segments,
hidden files, backslashes or symlinks leading outside. Responses carry an ETag and
``Cache-Control``; ``If-None-Match`` gets a 304. Anything else is a JSON 404.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from live.api import doc
from live.errors import NotFound
from live.http import error_response

CACHE_CONTROL = "public, max-age=86400"
MAX_PATH_CHARS = 300
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".vtt": "text/vtt; charset=utf-8",
}
SAFE_HEADERS = {
    "cache-control": CACHE_CONTROL,
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
}


class MediaFile(FileResponse):
    """A file response whose bad ``Range`` headers get JSON errors like every other failure."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = Headers(scope=scope).get("range")
        if wanted is not None and self.stat_result is not None:
            size = self.stat_result.st_size
            try:
                self._parse_range_header(wanted, size)
            except MalformedRangeHeader:
                await error_response(400, "bad_range", "malformed Range header")(
                    scope, receive, send
                )
                return
            except RangeNotSatisfiable:
                await error_response(
                    416,
                    "range_not_satisfiable",
                    f"the file has {size} bytes",
                    {"content-range": f"bytes */{size}"},
                )(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def media_root(data_dir: str) -> Path:
    return (Path(data_dir) / "media").resolve()


def resolve(root: Path, relative: str) -> tuple[Path, os.stat_result]:
    """The file ``relative`` names inside ``root``, or :class:`NotFound`; never a path outside it."""
    parts = relative.split("/")
    if (
        len(relative) > MAX_PATH_CHARS
        or "\\" in relative
        or "\x00" in relative
        or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
    ):
        raise NotFound("no such media file")
    suffix = Path(parts[-1]).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise NotFound("no such media file")
    candidate = root.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
        st = real.stat()
    except (OSError, RuntimeError) as exc:
        raise NotFound("no such media file") from exc
    if not real.is_relative_to(root) or not stat.S_ISREG(st.st_mode):
        raise NotFound("no such media file")
    return real, st


@doc(
    "A media file (product images) from the data dir's `media/` folder, cached",
    responses={304: "not modified (If-None-Match)", 404: "no such media file"},
    tag="media",
)
async def media(request: Request) -> Response:
    root = media_root(request.app.state.settings.data_dir)
    path, st = resolve(root, request.path_params["path"])
    response = MediaFile(
        path, media_type=CONTENT_TYPES[path.suffix.lower()], stat_result=st, headers=SAFE_HEADERS
    )
    etag = response.headers["etag"]
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"etag": etag, "cache-control": CACHE_CONTROL})
    return response


def routes() -> list[BaseRoute]:
    return [Route("/media/{path:path}", media, methods=["GET"])]
