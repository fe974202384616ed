"""Scalars from TensorBoard event files, in pure Python (no tensorboard, no protobuf package).

An event file is a sequence of TFRecords: ``<Q length``, ``<I masked CRC-32C of the length``,
``length`` bytes of data, ``<I masked CRC-32C of the data``. Each record's data is a serialized
``Event`` protobuf: field 1 ``wall_time`` (double), 2 ``step`` (int64), 5 ``summary``; a
``Summary`` holds repeated ``Value`` (field 1): 1 ``tag``, 2 ``simple_value`` (float32), 8
``tensor`` (a ``TensorProto``: 1 ``dtype``, 4 ``tensor_content``, 5 ``float_val``, 6
``double_val``). Newer writers store scalars as one-element float tensors; both are read. Other
values (images, histograms, text) are skipped.

Every record's length CRC is checked, and the data CRC of every record up to ``CHECK_DATA``
bytes (1 MiB: every scalar event; the CRC is pure Python, about 3.5 MB/s, so large image or
histogram records are framed-checked only). A file cut short while the writer was still running
ends at its last whole record, as TensorBoard does; a bad CRC is an error naming the file and
the byte offset.
"""

from __future__ import annotations

import struct
from pathlib import Path


CHECK_DATA = 1 << 20


class EventFileError(ValueError):
    """An event file that is not a valid TFRecord stream (names the file and the offset)."""


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecords use."""
    c = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path) -> list[bytes]:
    """The data of every whole record in one TFRecord file, CRCs checked."""
    blob = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(blob):
        if pos + 12 > len(blob):
            break  # a header cut short: the writer was interrupted
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if masked_crc(header) != length_crc:
            raise EventFileError(f"{path}: not a TFRecord stream (bad length checksum at byte {pos})")
        end = pos + 12 + length + 4
        if end > len(blob):
            break  # the last record cut short
        data = blob[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[end - 4:end])
        if length <= CHECK_DATA and masked_crc(data) != data_crc:
            raise EventFileError(f"{path}: corrupt record at byte {pos} (data checksum mismatch)")
        out.append(data)
        pos = end
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


_DT_FLOAT, _DT_DOUBLE = 1, 2


def _tensor_scalar(buf: bytes) -> float | None:
    """The value of a one-element float/double TensorProto (None for anything else)."""
    dtype, values = None, []
    content = b""
    for number, wire, value in fields(buf):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 4 and wire == 2:
            content = value
        elif number == 5:  # float_val: packed (wire 2) or one at a time (wire 5)
            values += list(struct.unpack(f"<{len(value) // 4}f", value))
        elif number == 6:
            values += list(struct.unpack(f"<{len(value) // 8}d", value))
    if content:
        if dtype == _DT_FLOAT and len(content) == 4:
            values = list(struct.unpack("<f", content))
        elif dtype == _DT_DOUBLE and len(content) == 8:
            values = list(struct.unpack("<d", content))
        else:
            return None
    if dtype not in (_DT_FLOAT, _DT_DOUBLE) or len(values) != 1:
        return None
    return float(values[0])


def _summary_values(buf: bytes):
    for number, wire, value in fields(buf):
        if number != 1 or wire != 2:
            continue
        tag, scalar = None, None
        for n, w, v in fields(value):
            if n == 1 and w == 2:
                tag = v.decode("utf-8", "replace")
            elif n == 2 and w == 5:
                scalar = struct.unpack("<f", v)[0]
            elif n == 8 and w == 2:
                scalar = _tensor_scalar(v)
        if tag is not None and scalar is not None:
            yield tag, float(scalar)


def scalars(path) -> list[tuple[str, int, float, float]]:
    """Every scalar in one event file: (tag, step, value, wall_time), in file order."""
    out = []
    for i, data in enumerate(records(path)):
        step, wall, summary = 0, 0.0, None
        try:
            for number, wire, value in fields(data):
                if number == 1 and wire == 1:
                    wall = struct.unpack("<d", value)[0]
                elif number == 2 and wire == 0:
                    step = value - (1 << 64) if value >= 1 << 63 else value
                elif number == 5 and wire == 2:
                    summary = value
            if summary is not None:
                out.extend((tag, step, v, wall) for tag, v in _summary_values(summary))
        except (ValueError, struct.error) as err:
            raise EventFileError(f"{path}: record {i} is not an Event protobuf ({err})") from None
    return out
