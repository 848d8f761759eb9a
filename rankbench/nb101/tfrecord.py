"""TFRecord framing without TensorFlow: read and write records with their CRC32C checks.

A record is ``uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data)``,
little-endian; ``masked_crc(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)`` with
``c = crc32c(x)``. Every check failure or short read is a :class:`CorruptRecordError` that
names the record index and byte offset, so a bad download is reported, never half-read. A
file whose very first record header is invalid is no TFRecord at all (an HDF5 store, an
archive, random bytes): :class:`NotTFRecordError`.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Callable, Iterable, Iterator, cast

import google_crc32c

__all__ = ["CorruptRecordError", "NotTFRecordError", "masked_crc32c", "read_records", "write_records", "encode_record"]

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct("<QI")


class CorruptRecordError(ValueError):
    """A TFRecord file (or a record in it) that is corrupt, truncated or not in NB101's format."""

    def __init__(self, message: str, *, index: int | None = None, offset: int | None = None,
                 path: str | os.PathLike | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if index is not None:
            where.append(f"record {index}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.index, self.offset, self.path = index, offset, path


class NotTFRecordError(CorruptRecordError):
    """A file that is not a TFRecord file at all: its first record header is invalid."""


#: leading bytes of files people hand to the importer by mistake
_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (an imported store is opened as it is: rankbench data info --store FILE)"),
    (b"\x1f\x8b", "gzip-compressed (decompress it first)"),
    (b"PK\x03\x04", "a zip archive (extract the .tfrecord from it first)"),
)


def _not_a_tfrecord(header: bytes, why: str, path) -> NotTFRecordError:
    what = next((desc for sig, desc in _SIGNATURES if header.startswith(sig)), None)
    return NotTFRecordError(f"not a TFRecord file: {why}" + (f"; it looks like {what}" if what else ""), path=path)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """One framed record (header, data, footer)."""
    length = _U64.pack(len(data))
    return length + _U32.pack(masked_crc32c(length)) + data + _U32.pack(masked_crc32c(data))


def write_records(path_or_file: str | os.PathLike | BinaryIO, records: Iterable[bytes]) -> int:
    """Write ``records`` as a TFRecord file; returns the number written."""
    f: BinaryIO
    if hasattr(path_or_file, "write"):
        f, close = cast(BinaryIO, path_or_file), False
    else:
        f, close = open(cast("str | os.PathLike", path_or_file), "wb"), True
    n = 0
    try:
        for data in records:
            f.write(encode_record(data))
            n += 1
    finally:
        if close:
            f.close()
    return n


def read_records(path_or_file: str | os.PathLike | BinaryIO, *,
                 progress: Callable[[int], object] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(index, offset, data)`` for every record, checking both CRCs of each.

    ``progress``, if given, is called with the number of bytes consumed by each record.
    Raises :class:`NotTFRecordError` when the first record's header is invalid (the file is
    something else), :class:`CorruptRecordError` on a later CRC mismatch or a truncated record.
    """
    f: BinaryIO
    if hasattr(path_or_file, "read"):
        f, close, path = cast(BinaryIO, path_or_file), False, getattr(path_or_file, "name", None)
    else:
        path = path_or_file
        f, close = open(cast("str | os.PathLike", path_or_file), "rb", buffering=1 << 20), True
    try:
        size = None
        try:
            size = os.fstat(f.fileno()).st_size
        except (AttributeError, OSError, ValueError):
            pass
        index, offset = 0, 0
        read = f.read
        while True:
            header = read(12)
            if not header:
                return
            if index == 0 and len(header) < 12:
                raise _not_a_tfrecord(header, f"{len(header)} bytes, shorter than one record header", path)
            if len(header) < 12:
                raise CorruptRecordError(
                    f"truncated record header ({len(header)} of 12 bytes); the file is incomplete",
                    index=index, offset=offset, path=path)
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                if index == 0:
                    raise _not_a_tfrecord(header, "the first record's header fails its check", path)
                raise CorruptRecordError("length CRC mismatch; the file is corrupt",
                                         index=index, offset=offset, path=path)
            if size is not None and offset + 16 + length > size:
                raise CorruptRecordError(
                    f"truncated record: its header announces {length} data bytes and a 4-byte CRC "
                    f"({length + 4} bytes), only {max(size - offset - 12, 0)} bytes are left; the file is "
                    f"incomplete", index=index, offset=offset, path=path)
            data = read(length)
            footer = read(4)
            if len(data) < length or len(footer) < 4:
                raise CorruptRecordError("truncated record data; the file is incomplete",
                                         index=index, offset=offset, path=path)
            if masked_crc32c(data) != _U32.unpack(footer)[0]:
                raise CorruptRecordError("data CRC mismatch; the file is corrupt",
                                         index=index, offset=offset, path=path)
            yield index, offset, data
            consumed = 16 + length
            if progress is not None:
                progress(consumed)
            offset += consumed
            index += 1
    finally:
        if close:
            f.close()
