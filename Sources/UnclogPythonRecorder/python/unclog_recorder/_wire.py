"""Encoding of the unclog trace format, version 1 (schema/trace-format.md).

The recorder's one source of the format's numbers (event codes, limits, chunk layout):
no other module writes a raw code byte. Pure functions; no recorder state here.
"""

import struct
import zlib

MAGIC = b"\x89UNCLOG\n"
HEADER = MAGIC + struct.pack("<HHI", 1, 0, 0)
SYNC = b"\xffUCK"
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_STRING = 65536
MAX_DEPTH = 1024
MAX_META = 4096

KIND_METADATA = 1
KIND_EVENTS = 2

# Event codes: spec §4.2, named EV_ + the spec's name in UPPER_SNAKE_CASE (one per
# line; a test compares them with the spec, another with _fast.c's #defines).
EV_STRING = 0x01
EV_FRAME = 0x02
EV_NATIVE_FRAME = 0x03
EV_STACK = 0x04
EV_IMAGE = 0x05
EV_THREAD = 0x06
EV_GREENTHREAD_CREATE = 0x07
EV_GREENTHREAD_EXIT = 0x08
EV_RUNNING = 0x09
EV_SWITCH_TO_HUB = 0x10
EV_SWITCH_TIMER = 0x11
EV_SWITCH_IO = 0x12
EV_SWITCH_SPAWN = 0x13
EV_SWITCH_EXPLICIT = 0x14
EV_SWITCH_OTHER = 0x15
EV_IO_WAIT_BEGIN = 0x20
EV_IO_WAIT_END = 0x21
EV_STALL_BEGIN = 0x30
EV_STALL_SAMPLE = 0x31
EV_STALL_END = 0x32
EV_DROPPED = 0x40
EV_END = 0x7F

DROPPED_RECORDER_ERROR = 2  # `Dropped` reason: a recorder error caught

# metadata value types (spec §3)
META_UINT = 0
META_STRING = 1
META_LIST = 2

FLAG_INTERNAL = 1
FLAG_LIBRARY = 8  # standard library or an installed package (not the program's code)

_chunk_tail = struct.Struct("<BBHQII")  # kind flags reserved base_ns thread seq
_u32 = struct.Struct("<I")
_crc32 = zlib.crc32

# Precomputed encodings of small unsigned varints (0 .. 16383): the hot path is a
# table lookup for almost every dt and id.
UV = []
for _n in range(16384):
    if _n < 128:
        UV.append(bytes((_n,)))
    else:
        UV.append(bytes(((_n & 0x7F) | 0x80, _n >> 7)))
UV = tuple(UV)


# CODE[c]: the one byte of event code c (or of any byte value c)
CODE = tuple(bytes((_c,)) for _c in range(256))
_META_UINT, _META_STRING, _META_LIST = CODE[META_UINT], CODE[META_STRING], CODE[META_LIST]


def head(code, dt=0):
    """An event's first bytes: its code and its dt (definitions are written with dt 0).
    Callers precompute these once at import, so hot paths append a constant."""
    return CODE[code] + uv(dt)


def uv(n):
    """Shortest unsigned LEB128 encoding of n (0 <= n < 2**64)."""
    if n < 16384:
        if n < 0:
            n = 0
        return UV[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s):
    """A `string`: uvarint length then UTF-8 bytes (truncated to the limit)."""
    if isinstance(s, bytes):
        b = s
    else:
        b = str(s).encode("utf-8", "replace")
    if len(b) > MAX_STRING:
        b = b[:MAX_STRING]
        # do not cut a UTF-8 sequence in the middle
        while b and (b[-1] & 0xC0) == 0x80:
            b = b[:-1]
        if b and b[-1] >= 0xC0:
            b = b[:-1]
    return uv(len(b)) + b


def chunk(kind, base_ns, thread, seq, payload):
    """A whole chunk: sync, length, crc, then kind … seq and the payload."""
    tail = _chunk_tail.pack(kind, 0, 0, base_ns, thread, seq & 0xFFFFFFFF)
    crc = _crc32(payload, _crc32(tail)) & 0xFFFFFFFF
    return SYNC + _u32.pack(len(payload)) + _u32.pack(crc) + tail + payload


def metadata_payload(entries):
    """entries: list of (key, value); value int → uint, str → string, list → list."""
    out = bytearray(uv(len(entries)))
    for key, value in entries:
        out += string(key)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            out += _META_UINT + uv(value)
        elif isinstance(value, (list, tuple)):
            out += _META_LIST + uv(len(value))
            for item in value:
                out += string(item)
        else:
            out += _META_STRING + string(value)
    return bytes(out)
