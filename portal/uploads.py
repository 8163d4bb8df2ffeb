"""Uploaded materials (PDF, Word, Excel, pictures) on disk, outside the static folder.

A file is accepted only when its extension is on the list *and* its bytes are
that kind of file: the name and the browser's mimetype are whatever the sender
says, so neither is trusted. Files are stored under a random name; the name the
user gave is kept only as metadata (for the download) and never touches a path.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass

import filetype
from sqlalchemy import event
from sqlalchemy.orm import Session
from flask import current_app, send_file
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from portal.services import ServiceError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
HEAD_BYTES = 8192  # what filetype looks at
MAX_NAME_CHARS = 200

PDF, WORD, EXCEL, IMAGE = "pdf", "word", "excel", "image"

# extension -> (family, content type we serve it with)
ALLOWED_EXTENSIONS: dict[str, tuple[str, str]] = {
    "pdf": (PDF, "application/pdf"),
    "doc": (WORD, "application/msword"),
    "docx": (WORD, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xls": (EXCEL, "application/vnd.ms-excel"),
    "xlsx": (EXCEL, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "png": (IMAGE, "image/png"),
    "jpg": (IMAGE, "image/jpeg"),
    "jpeg": (IMAGE, "image/jpeg"),
    "gif": (IMAGE, "image/gif"),
    "webp": (IMAGE, "image/webp"),
}

# extension -> what filetype may call its first bytes. Images must match their
# own extension exactly (a PNG named .jpg is refused, like a PNG named .pdf).
_FILETYPE_KINDS: dict[str, frozenset[str]] = {
    "pdf": frozenset({"pdf"}),
    "png": frozenset({"png", "apng"}),
    "jpg": frozenset({"jpg"}),
    "jpeg": frozenset({"jpg"}),
    "gif": frozenset({"gif"}),
    "webp": frozenset({"webp"}),
    # OOXML: filetype names it when the Word/Excel part comes early in the ZIP,
    # otherwise sees a plain zip; either way the ZIP is opened and checked below.
    "docx": frozenset({"docx", "zip"}),
    "xlsx": frozenset({"xlsx", "zip"}),
}
_OOXML_MAIN_PART = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The stream that makes an OLE2 compound file a Word or an Excel document
# (the same container also holds .msi installers, .ppt, Outlook .msg ...).
_OLE2_STREAMS = {"doc": frozenset({"worddocument"}), "xls": frozenset({"workbook", "book"})}

STORED_NAME_RE = re.compile(r"[0-9a-f]{32}\.(?:%s)" % "|".join(sorted(ALLOWED_EXTENSIONS)), re.ASCII)


@dataclass(frozen=True)
class StoredFile:
    original_name: str  # sanitised, for display and as the download name
    stored_name: str    # random, the only name used on disk
    content_type: str   # from the checked content, never from the browser
    size: int
    sha256: str


class StoredFileNotFound(ServiceError):
    status = 404


# --- names and places ------------------------------------------------------

def upload_folder() -> str:
    """Where uploads live; created on first use. Never inside the static folder,
    which the web server would hand out to anyone without a permission check."""
    folder = current_app.config.get("UPLOAD_FOLDER") or os.path.join(current_app.instance_path, "uploads")
    folder = os.path.realpath(folder)
    static = current_app.static_folder
    if static:
        static = os.path.realpath(static)
        if os.path.commonpath([folder, static]) == static:
            raise RuntimeError(f"UPLOAD_FOLDER {folder!r} must not be inside the static folder {static!r}")
    os.makedirs(folder, mode=0o750, exist_ok=True)
    return folder


def max_upload_bytes() -> int:
    return int(current_app.config.get("UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


def sanitize_filename(name: str | None) -> str:
    """The user's file name as metadata: last path component only (browsers on
    Windows may send C:\\...\\名单.xlsx), no control or direction-override
    characters (``\\u202e`` makes "exe.pdf" look like "fdp.exe"), at most 200
    characters with the extension kept. Chinese characters stay."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip()
    if set(name) <= {"."}:  # "", "." and ".." are not names
        return ""
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[:MAX_NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name


def _extension(name: str) -> str:
    _stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def _format_limit(size: int) -> str:
    if size >= 1024 * 1024:
        value, unit = size / (1024 * 1024), "MB"
    elif size >= 1024:
        value, unit = size / 1024, "KB"
    else:
        return f"{size} B"
    return (f"{value:.0f}" if value == int(value) else f"{value:.1f}") + " " + unit


def _accepted_types() -> str:
    return _("PDF, Word (.doc, .docx), Excel (.xls, .xlsx) and pictures (.png, .jpg, .jpeg, .gif, .webp)")


def _family_label(family: str) -> str:
    return {
        PDF: _("PDF document"),
        WORD: _("Word document"),
        EXCEL: _("Excel workbook"),
        IMAGE: _("picture"),
    }[family]


# --- content checks ----------------------------------------------------------

def _head_matches(ext: str, head: bytes) -> bool:
    """The first bytes are the kind of file the extension promises."""
    if ext in _OLE2_STREAMS:
        return head.startswith(OLE2_MAGIC)
    kind = filetype.guess(head)
    return kind is not None and kind.extension in _FILETYPE_KINDS[ext]


def _ooxml_is(path: str, ext: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and _OOXML_MAIN_PART[ext] in names


def _ole2_stream_names(path: str) -> set[str]:
    """Names of the entries in an OLE2 compound file's directory, lower-cased.

    Just enough of [MS-CFB] to read the directory: header, FAT (through the
    DIFAT), the directory's sector chain. Every loop is bounded by the file's
    sector count, so a crafted file cannot make it run forever."""
    names: set[str] = set()
    with open(path, "rb") as fh:
        header = fh.read(512)
        if len(header) < 512 or not header.startswith(OLE2_MAGIC):
            return names
        sector_shift = struct.unpack_from("<H", header, 30)[0]
        if sector_shift not in (9, 12):
            return names
        sector_size = 1 << sector_shift
        file_size = os.fstat(fh.fileno()).st_size
        max_sectors = file_size // sector_size + 1
        first_dir, = struct.unpack_from("<I", header, 48)
        difat_next, difat_count = struct.unpack_from("<II", header, 68)
        end_marks = {0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFC}

        def sector(number: int) -> bytes:
            if number >= max_sectors:
                return b""
            fh.seek((number + 1) * sector_size)
            return fh.read(sector_size)

        fat_sectors = [n for n in struct.unpack_from("<109I", header, 76) if n not in end_marks]
        per_sector = sector_size // 4
        for _i in range(min(difat_count, max_sectors)):
            if difat_next in end_marks:
                break
            data = sector(difat_next)
            if len(data) < sector_size:
                break
            entries = struct.unpack("<%dI" % per_sector, data)
            fat_sectors.extend(n for n in entries[:-1] if n not in end_marks)
            difat_next = entries[-1]

        fat: list[int] = []
        for number in fat_sectors[:max_sectors]:
            data = sector(number)
            if len(data) < sector_size:
                break
            fat.extend(struct.unpack("<%dI" % per_sector, data))

        current, seen = first_dir, set()
        while current not in end_marks and current not in seen and len(seen) < max_sectors:
            seen.add(current)
            data = sector(current)
            for offset in range(0, len(data) - 127, 128):
                name_len, entry_type = struct.unpack_from("<HB", data, offset + 64)
                if entry_type in (1, 2, 5) and 2 <= name_len <= 64:
                    raw = data[offset:offset + name_len - 2]
                    names.add(raw.decode("utf-16-le", errors="replace").lower())
            current = fat[current] if current < len(fat) else 0xFFFFFFFE
    return names


def _body_matches(ext: str, path: str) -> bool:
    """Checks that need the whole file: the container really is a Word/Excel document."""
    if ext in _OOXML_MAIN_PART:
        return _ooxml_is(path, ext)
    if ext in _OLE2_STREAMS:
        return bool(_ole2_stream_names(path) & _OLE2_STREAMS[ext])
    return True


# --- storing -------------------------------------------------------------

def save_upload(file_storage: FileStorage) -> StoredFile:
    """Check and store one uploaded file; refuses with a ServiceError naming the file.

    Streams in chunks: the size limit stops reading at the first byte too many
    and the kind of file is checked on the first bytes before the rest is
    written, so neither a huge upload nor a renamed program fills the disk."""
    original = sanitize_filename(file_storage.filename if file_storage else None)
    if not original:
        raise ServiceError(_("No file was chosen. Please choose a file to upload."), field="file")
    ext = _extension(original)
    if ext not in ALLOWED_EXTENSIONS:
        raise ServiceError(_('"%(name)s" is not an accepted type of file. Accepted: %(types)s.',
                             name=original, types=_accepted_types()), field="file")
    family, content_type = ALLOWED_EXTENSIONS[ext]
    limit = max_upload_bytes()

    def too_big() -> ServiceError:
        return ServiceError(_('"%(name)s" is too large: a file may be at most %(limit)s. '
                              'Please make the file smaller (for example, split it or compress '
                              'the pictures) and upload it again.',
                              name=original, limit=_format_limit(limit)), field="file")

    def wrong_content() -> ServiceError:
        return ServiceError(_('"%(name)s" is not a real %(kind)s: its content does not match its '
                              'extension ".%(ext)s". It may have been renamed or damaged; please '
                              'upload the original file.',
                              name=original, kind=_family_label(family), ext=ext), field="file")

    stream = file_storage.stream
    head = b""
    while len(head) < HEAD_BYTES:
        chunk = stream.read(HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
        if len(head) > limit:
            raise too_big()
    if not head:
        raise ServiceError(_('"%(name)s" is empty (0 bytes). Please choose the file again; '
                             'it may not have been saved completely.', name=original), field="file")
    if not _head_matches(ext, head):
        raise wrong_content()

    folder = upload_folder()
    digest = hashlib.sha256(head)
    size = len(head)
    fd, tmp_path = tempfile.mkstemp(prefix=".incoming-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            while True:
                chunk = stream.read(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise too_big()
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if not _body_matches(ext, tmp_path):
            raise wrong_content()
        stored_name = f"{secrets.token_hex(16)}.{ext}"
        # Same folder, so the rename is atomic: a reader sees no file or all of it.
        os.replace(tmp_path, os.path.join(folder, stored_name))
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _forget_on_rollback(os.path.join(folder, stored_name))
    return StoredFile(original_name=original, stored_name=stored_name, content_type=content_type,
                      size=size, sha256=digest.hexdigest())


# --- files written by a transaction that is rolled back ----------------------

_WRITTEN = "portal_uploaded_files"


def store_generated(data: bytes, ext: str) -> str:
    """Store bytes the portal made itself (a re-encoded photo, a briefing) with the uploads, under a
    random name, never under static: written to a temporary file in the same folder and renamed, so
    a reader sees no file or all of it; deleted again if the transaction rolls back. Returns the name."""
    folder = upload_folder()
    stored_name = f"{secrets.token_hex(16)}.{ext}"
    fd, tmp_path = tempfile.mkstemp(prefix=".generated-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_path, os.path.join(folder, stored_name))
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _forget_on_rollback(os.path.join(folder, stored_name))
    return stored_name


def _forget_on_rollback(path: str) -> None:
    """A file saved for a row that is then rolled back would stay on disk with
    nothing pointing at it: the session deletes it on rollback."""
    from portal.extensions import db

    db.session().info.setdefault(_WRITTEN, []).append(path)


@event.listens_for(Session, "after_commit")
def _keep_written_files(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _delete_written_files(session: Session, previous_transaction) -> None:
    for path in session.info.pop(_WRITTEN, []):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


# --- reading back --------------------------------------------------------

def _not_found() -> StoredFileNotFound:
    return StoredFileNotFound(_("The file was not found. It may have been deleted."))


def _checked_path(stored_name: str) -> str:
    # Only names we made ourselves: no separators, no "..", nothing to traverse with.
    if not isinstance(stored_name, str) or not STORED_NAME_RE.fullmatch(stored_name):
        raise _not_found()
    return os.path.join(upload_folder(), stored_name)


def open_stored(stored_name: str) -> str:
    """The path of a stored file; refuses names that are not ours or files that are gone."""
    path = _checked_path(stored_name)
    if not os.path.isfile(path):
        raise _not_found()
    return path


def send_stored(stored_name: str, original_name: str, content_type: str):
    """A download response under the user's original (possibly Chinese) file name.

    Werkzeug writes ``filename*=UTF-8''...`` (RFC 5987) for non-ASCII names,
    which every current browser uses."""
    path = open_stored(stored_name)
    download_name = sanitize_filename(original_name) or stored_name
    response = send_file(path, mimetype=content_type, as_attachment=True,
                         download_name=download_name, max_age=0)
    # Never let a browser guess "this is HTML" from the bytes of an upload.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def delete_stored(stored_name: str) -> None:
    """Remove a stored file; a file already gone is not an error."""
    path = _checked_path(stored_name)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
