"""Files the portal hands out, named one way: a UTF-8 name for current browsers (RFC 5987,
``filename*``) and an ASCII one for the rest."""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def attachment(data: bytes, mimetype: str, name: str, ascii_name: str, *, private: bool = False) -> Response:
    """``data`` as a download called ``name`` (任务清单-金水区-2026-11-30.xlsx), ``ascii_name``
    (tasks.xlsx) where the UTF-8 name is not understood. ``private``: one user's file (a job's
    result), which no cache may keep."""
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if private:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def stored_attachment(stored_name: str | None, mimetype: str, name: str, ascii_name: str) -> Response:
    """A file a job kept (portal.uploads' store) for its requester; 404 when there is none or it is gone."""
    from portal.uploads import StoredFileNotFound, open_stored

    if not stored_name:
        abort(404)
    try:
        path = open_stored(stored_name)
    except StoredFileNotFound:
        abort(404)
    with open(path, "rb") as fh:
        return attachment(fh.read(), mimetype, name, ascii_name, private=True)
