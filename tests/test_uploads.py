"""Uploaded materials: real files of every accepted kind are stored under random
names outside the static folder; empty, oversized, renamed and foreign files are
refused with a message naming the file; stored names cannot be used to traverse."""
from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zipfile
import zlib

import pytest
from docx import Document
from werkzeug.datastructures import FileStorage

from portal import uploads
from portal.services import ServiceError
from portal.uploads import (
    StoredFile, delete_stored, open_stored, sanitize_filename, save_upload, send_stored, upload_folder,
)

RANDOM_NAME = re.compile(r"[0-9a-f]{32}\.[a-z]{3,4}")


# --- real files, built here ------------------------------------------------

def make_pdf() -> bytes:
    body = (b"%PDF-1.4\n"
            b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n")
    xref_at = len(body)
    return body + (b"xref\n0 4\n0000000000 65535 f \n"
                   b"trailer << /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at)


def make_png() -> bytes:
    """A real 1x1 white PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\xff\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_gif() -> bytes:
    """A real 1x1 transparent GIF."""
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
            b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def make_jpeg() -> bytes:
    """JPEG markers: SOI, a JFIF APP0 segment, EOI (enough for the signature check)."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def make_webp() -> bytes:
    """A RIFF/WEBP container with a VP8L chunk for a 1x1 picture."""
    vp8l = b"\x2f\x00\x00\x00\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    payload = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def make_docx(text: str = "社区教育工作通知") -> bytes:
    document = Document()
    document.add_heading("会议材料", level=1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def make_xlsx() -> bytes:
    """The smallest workbook Excel opens: content types, package rels, workbook, one sheet."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    return make_zip({
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>").encode(),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>").encode(),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<sheets><sheet name="名单" sheetId="1" r:id="rId1"/></sheets></workbook>').encode(),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>").encode(),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>'
            '<row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>').encode(),
    })


def make_ole2(stream_name: str) -> bytes:
    """A compound file ([MS-CFB], version 3) holding one 4 KB stream, as in a .doc
    ("WordDocument") or a .xls ("Workbook"). Sector 0: FAT; 1: directory; 2-9: the stream."""
    free, end, fat_sect = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = uploads.OLE2_MAGIC
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 44, 1)            # one FAT sector
    struct.pack_into("<I", header, 48, 1)            # directory starts at sector 1
    struct.pack_into("<I", header, 56, 4096)         # mini stream cutoff
    struct.pack_into("<II", header, 60, end, 0)      # no mini FAT
    struct.pack_into("<II", header, 68, end, 0)      # no DIFAT sectors
    struct.pack_into("<109I", header, 76, 0, *([free] * 108))
    fat = [fat_sect, end] + list(range(3, 10)) + [end]
    fat_sector = struct.pack("<128I", *(fat + [free] * (128 - len(fat))))

    def entry(name: str, kind: int, start: int = end, size: int = 0, child: int = free) -> bytes:
        raw = (name + "\0").encode("utf-16-le")
        data = bytearray(128)
        data[:len(raw)] = raw
        struct.pack_into("<HBB", data, 64, len(raw), kind, 1)
        struct.pack_into("<III", data, 68, free, free, child)
        struct.pack_into("<II", data, 116, start, size)
        return bytes(data)

    directory = entry("Root Entry", 5, child=1) + entry(stream_name, 2, start=2, size=4096) + bytes(256)
    stream = (b"\xec\xa5\xc1\x00" if stream_name == "WordDocument" else b"\x09\x08\x10\x00") + bytes(4092)
    return bytes(header) + fat_sector + directory + stream


def upload(data: bytes, filename: str, mimetype: str = "application/octet-stream") -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=filename, content_type=mimetype)


# --- fixtures ------------------------------------------------------------

@pytest.fixture
def folder(app, tmp_path, monkeypatch):
    """An app context with uploads going to a temporary folder."""
    target = tmp_path / "uploads"  # does not exist yet: save_upload creates it
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(target))
    with app.app_context():
        yield target


def stored_files(target) -> list[str]:
    return sorted(os.listdir(target)) if os.path.isdir(target) else []


def refused(file_storage: FileStorage) -> str:
    with pytest.raises(ServiceError) as info:
        save_upload(file_storage)
    assert info.value.status == 400
    assert info.value.field == "file"
    return info.value.message


# --- accepted ------------------------------------------------------------

ACCEPTED = [
    ("通知.pdf", make_pdf, "application/pdf"),
    ("合影.png", make_png, "image/png"),
    ("logo.gif", make_gif, "image/gif"),
    ("photo.jpg", make_jpeg, "image/jpeg"),
    ("PHOTO.JPEG", make_jpeg, "image/jpeg"),
    ("banner.webp", make_webp, "image/webp"),
    ("会议纪要.docx", make_docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("名单.xlsx", make_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("旧版通知.doc", lambda: make_ole2("WordDocument"), "application/msword"),
    ("旧版名单.xls", lambda: make_ole2("Workbook"), "application/vnd.ms-excel"),
]


@pytest.mark.parametrize("filename,make,content_type", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_kinds_are_stored(app, folder, filename, make, content_type):
    data = make()
    # The browser's mimetype is ignored: the stored type comes from the content.
    stored = save_upload(upload(data, filename, mimetype="text/html"))
    assert isinstance(stored, StoredFile)
    assert stored.original_name == filename
    assert stored.content_type == content_type
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert RANDOM_NAME.fullmatch(stored.stored_name)
    assert stored.stored_name.endswith("." + filename.rsplit(".", 1)[1].lower())
    assert filename.rsplit(".", 1)[0] not in stored.stored_name

    path = open_stored(stored.stored_name)
    assert os.path.dirname(path) == os.path.realpath(folder)
    with open(path, "rb") as fh:
        assert fh.read() == data
    static = os.path.realpath(app.static_folder)
    assert os.path.commonpath([os.path.realpath(path), static]) != static
    assert stored_files(folder) == [stored.stored_name]  # no temporary file left behind


def test_every_upload_gets_its_own_name(folder):
    first = save_upload(upload(make_pdf(), "a.pdf"))
    second = save_upload(upload(make_pdf(), "a.pdf"))
    assert first.stored_name != second.stored_name
    assert first.sha256 == second.sha256


def test_large_file_streams_through(app, folder, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1024 * 1024)
    data = make_pdf() + b"%" + b"x" * (600 * 1024) + b"\n%%EOF\n"
    stored = save_upload(upload(data, "大文件.pdf"))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()


def test_docx_whose_zip_starts_elsewhere_is_checked_by_its_parts(folder):
    """Tools order ZIP entries differently; filetype then sees a plain zip."""
    with zipfile.ZipFile(io.BytesIO(make_docx())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    reordered = {"docProps/custom.xml": b"<x/>", **dict(sorted(members.items(), reverse=True))}
    reordered = {"zz/readme.txt": b"first", **reordered}
    stored = save_upload(upload(make_zip(reordered), "重排.docx"))
    assert stored.content_type.endswith("wordprocessingml.document")


def test_original_name_is_sanitised_metadata(folder):
    stored = save_upload(upload(make_pdf(), "C:\\Users\\张三\\桌面\\../..\\2026年 工作安排.pdf"))
    assert stored.original_name == "2026年 工作安排.pdf"
    stored = save_upload(upload(make_pdf(), "../../etc/通知\u202e.pdf"))
    assert stored.original_name == "通知.pdf"
    long_name = "社区教育" * 80 + ".pdf"
    stored = save_upload(upload(make_pdf(), long_name))
    assert len(stored.original_name) == 200
    assert stored.original_name.endswith(".pdf") and stored.original_name.startswith("社区教育")


def test_sanitize_filename():
    assert sanitize_filename("/tmp/x/名单.xlsx") == "名单.xlsx"
    assert sanitize_filename("..") == ""
    assert sanitize_filename(None) == ""
    assert sanitize_filename("a\x00b\r\n.pdf") == "ab.pdf"
    assert len(sanitize_filename("x" * 500)) == 200


# --- refused -------------------------------------------------------------

def test_empty_file_is_refused(folder):
    message = refused(upload(b"", "空白.pdf"))
    assert "空白.pdf" in message
    assert stored_files(folder) == []


def test_missing_file_name_is_refused(folder):
    refused(upload(make_pdf(), ""))
    refused(FileStorage(stream=io.BytesIO(make_pdf())))


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.mark.parametrize("limit", [4 * 1024, 100 * 1024], ids=["within-first-bytes", "while-streaming"])
def test_oversized_file_is_refused_early(app, folder, monkeypatch, limit):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", limit)
    data = make_pdf() + b"%" + b"x" * (2 * 1024 * 1024)
    stream = CountingStream(data)
    message = refused(FileStorage(stream=stream, filename="超大文件.pdf"))
    assert "超大文件.pdf" in message
    assert f"{limit // 1024} KB" in message
    # Reading stopped soon after the limit and nothing stayed on disk.
    assert stream.bytes_read <= limit + uploads.CHUNK_BYTES
    assert stored_files(folder) == []


def test_file_exactly_at_the_limit_is_accepted(app, folder, monkeypatch):
    data = make_pdf()
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", len(data))
    assert save_upload(upload(data, "a.pdf")).size == len(data)
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", len(data) - 1)
    refused(upload(data, "a.pdf"))


@pytest.mark.parametrize("filename", ["setup.exe", "page.html", "drawing.svg", "script.js", "archive.zip",
                                      "noextension", "slides.pptx", "report.pdf.exe"])
def test_extension_not_allowed_is_refused(folder, filename):
    message = refused(upload(make_pdf(), filename))
    assert filename in message
    assert stored_files(folder) == []


EXE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(48)
       + b"This program cannot be run in DOS mode")
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
NOT_WORD_ZIP = make_zip({"readme.txt": b"hello", "word/fake.txt": b"not a document"})

RENAMED = [
    ("恶意程序.pdf", EXE),
    ("页面.pdf", HTML),
    ("图片.pdf", make_png()),
    ("文档.pdf", make_docx()),
    ("图片.jpg", make_png()),
    ("图片.png", make_gif()),
    ("图片.gif", HTML),
    ("程序.png", EXE),
    ("压缩包.docx", NOT_WORD_ZIP),
    ("表格.docx", make_xlsx()),
    ("文档.xlsx", make_docx()),
    ("伪装.xlsx", make_zip({"[Content_Types].xml": b"<Types/>", "xl/other.xml": b"<x/>"})),
    ("程序.docx", EXE),
    ("表格.doc", make_ole2("Workbook")),
    ("文档.xls", make_ole2("WordDocument")),
    ("安装包.doc", make_ole2("\x05SummaryInformation")),
    ("页面.doc", HTML),
    ("图片.xls", make_png()),
]


@pytest.mark.parametrize("filename,data", RENAMED, ids=[r[0] for r in RENAMED])
def test_content_that_does_not_match_the_extension_is_refused(folder, filename, data):
    message = refused(upload(data, filename, mimetype="application/pdf"))
    assert filename in message
    assert stored_files(folder) == []


# --- reading back and deleting -------------------------------------------

@pytest.mark.parametrize("name", [
    "../etc/passwd", "..", "", "/etc/passwd", "uploads/../../x", "abc.pdf",
    "0123456789abcdef0123456789abcdef",            # no extension
    "0123456789ABCDEF0123456789ABCDEF.pdf",        # not how we spell them
    "0123456789abcdef0123456789abcdef.exe",        # not an accepted type
    "0123456789abcdef0123456789abcdef.pdf\n",
    "../0123456789abcdef0123456789abcdef.pdf",
    "0123456789abcdef0123456789abcdef.pdf/../../x",
])
def test_open_stored_refuses_foreign_names(folder, name):
    with pytest.raises(ServiceError) as info:
        open_stored(name)
    assert info.value.status == 404
    with pytest.raises(ServiceError):
        delete_stored(name)


def test_open_stored_refuses_a_name_that_is_not_there(folder):
    with pytest.raises(ServiceError):
        open_stored("0123456789abcdef0123456789abcdef.pdf")


def test_send_stored_downloads_under_the_chinese_name(app, folder):
    data = make_pdf()
    stored = save_upload(upload(data, "2026年社区教育工作通知.pdf"))
    with app.test_request_context():
        response = send_stored(stored.stored_name, stored.original_name, stored.content_type)
        response.direct_passthrough = False
        assert response.get_data() == data
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''2026%E5%B9%B4" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_delete_stored(folder):
    stored = save_upload(upload(make_png(), "a.png"))
    delete_stored(stored.stored_name)
    assert stored_files(folder) == []
    delete_stored(stored.stored_name)  # already gone: not an error
    with pytest.raises(ServiceError):
        open_stored(stored.stored_name)


def test_default_folder_is_in_the_instance_folder(app, monkeypatch):
    monkeypatch.delitem(app.config, "UPLOAD_FOLDER", raising=False)
    with app.app_context():
        assert upload_folder() == os.path.realpath(os.path.join(app.instance_path, "uploads"))


def test_folder_inside_static_is_refused(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", os.path.join(app.static_folder, "uploads"))
    with app.app_context():
        with pytest.raises(RuntimeError):
            upload_folder()
    assert not os.path.exists(os.path.join(app.static_folder, "uploads"))


def test_a_rolled_back_upload_leaves_no_file(app, tmp_path, monkeypatch):
    """The row is rolled back (a later refusal in the same request): its file goes too."""
    import io
    import os

    from werkzeug.datastructures import FileStorage

    from portal.extensions import db
    from portal.uploads import save_upload

    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    with app.app_context():
        db.session.connection()
        stored = save_upload(FileStorage(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), filename="a.pdf"))
        assert os.path.exists(tmp_path / stored.stored_name)
        db.session.rollback()
        assert not os.path.exists(tmp_path / stored.stored_name)
        kept = save_upload(FileStorage(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), filename="b.pdf"))
        db.session.commit()
        db.session.rollback()
        assert os.path.exists(tmp_path / kept.stored_name)
        db.session.remove()
