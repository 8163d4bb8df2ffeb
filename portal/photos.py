"""Photos of activities: checked by content like every upload (:mod:`portal.uploads`),
then re-encoded with Pillow: turned upright, shrunk to at most
:data:`MAX_SIDE` pixels, saved as JPEG without any metadata (EXIF, and with it
the GPS position a phone writes into every picture), and given a thumbnail.
The original bytes are never kept."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from portal import uploads
from portal.services import ServiceError

MAX_SIDE = 1600
THUMB_SIDE = 320
#: More pixels than a 50-megapixel camera: a decompression bomb, not a photo.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85


@dataclass(frozen=True)
class StoredPhoto:
    original_name: str
    stored_name: str
    thumb_name: str
    size: int
    sha256: str
    width: int
    height: int
    content_type: str = "image/jpeg"


def _write_jpeg(image: Image.Image) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)  # no exif= argument: no metadata at all
    data = buffer.getvalue()
    return uploads.store_generated(data, "jpg"), data


def save_photo(file_storage: FileStorage, *, field: str = "photos") -> StoredPhoto:
    """Check, re-encode and store one photo; a refusal names the file and ``field``."""
    try:
        checked = uploads.save_upload(file_storage)
    except ServiceError as exc:
        raise ServiceError(exc.message, field) from None
    path = uploads.open_stored(checked.stored_name)
    try:
        if uploads.ALLOWED_EXTENSIONS[checked.stored_name.rsplit(".", 1)[1]][0] != uploads.IMAGE:
            raise ServiceError(_('"%(name)s" is not a picture: photos are .jpg, .jpeg, .png, .gif or .webp '
                                 '(a document goes under attachments).', name=checked.original_name), field)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    if image.width * image.height > MAX_PIXELS:
                        raise ServiceError(_('"%(name)s" has too many pixels (%(w)d × %(h)d): take or export the '
                                             'photo at a smaller size.', name=checked.original_name,
                                             w=image.width, h=image.height), field)
                    image.seek(0)
                    upright = ImageOps.exif_transpose(image)
                    upright = upright.convert("RGB") if upright.mode != "RGB" else upright.copy()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning, SyntaxError):
            raise ServiceError(_('"%(name)s" is not a picture that can be read: it may be damaged. Please take '
                                 'or choose the photo again.', name=checked.original_name), field) from None
        upright.info.clear()
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
        stored_name, data = _write_jpeg(upright)
        thumb = upright.copy()
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        thumb_name, _thumb = _write_jpeg(thumb)
    finally:
        uploads.delete_stored(checked.stored_name)
    original = checked.original_name.rsplit(".", 1)[0] + ".jpg"
    return StoredPhoto(original_name=original, stored_name=stored_name, thumb_name=thumb_name, size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), width=upright.width, height=upright.height)
