#!/usr/bin/env python3
"""A second, independent reader of the unclog trace format, written from
schema/trace-format.md: decodes each schema/vectors/NAME.bin into the canonical JSON value
of spec section 9 and compares it with NAME.json. Exit status 1 on any difference.

    python3 schema/vectors/check.py [NAME.bin ...]

It exists to show that the spec alone is enough to reproduce the vectors (and that the
vectors say what the spec says). Standard library only.
"""
import json
import os
import sys
import zlib

MAGIC = b"\x89UNCLOG\n"
SYNC = b"\xffUCK"
MAX_PAYLOAD = 16 << 20
MAX_STRING = 65536
MAX_STACK = 1024
MAX_BUILD_ID = 64
MAX_META = 4096
MAX_ID = 2**32 - 1
REASONS = {0x11: "timer", 0x12: "io", 0x13: "spawn", 0x14: "explicit", 0x15: "other"}


class Bad(Exception):
    """A field that cannot be decoded (spec 2.2): ends the chunk's decoding."""


class Cursor:
    def __init__(self, b):
        self.b, self.i = b, 0

    def u8(self):
        if self.i >= len(self.b):
            raise Bad("past the end")
        self.i += 1
        return self.b[self.i - 1]

    def uv(self):
        v = 0
        for k in range(10):
            byte = self.u8()
            if k == 9 and byte > 1:
                raise Bad("varint over 64 bits")
            v |= (byte & 0x7F) << (7 * k)
            if byte < 0x80:
                return v
        raise Bad("varint longer than 10 bytes")

    def ident(self):
        v = self.uv()
        if v > MAX_ID:
            raise Bad("id out of range")
        return v

    def raw(self, n):
        if n > len(self.b) - self.i:
            raise Bad("past the end")
        self.i += n
        return self.b[self.i - n:self.i]

    def string(self):
        n = self.uv()
        if n > MAX_STRING:
            raise Bad("string over the limit")
        return self.raw(n).decode("utf-8", "replace")


def intact(data, off):
    """The payload length of an intact chunk at `off`, else None (spec 2.2)."""
    if data[off:off + 4] != SYNC or off + 32 > len(data):
        return None
    length = int.from_bytes(data[off + 4:off + 8], "little")
    if length > MAX_PAYLOAD or off + 32 + length > len(data):
        return None
    if zlib.crc32(data[off + 12:off + 32 + length]) != int.from_bytes(data[off + 8:off + 12], "little"):
        return None
    return length


def metadata(payload, base_off, damage):
    c, entries, start = Cursor(payload), [], 0
    try:
        count = c.uv()
        if count > MAX_META:
            raise Bad("too many entries")
        for _ in range(count):
            start = c.i
            key = c.string()
            typ = c.u8()
            if typ == 0:
                entries.append({"key": key, "uint": c.uv()})
            elif typ == 1:
                entries.append({"key": key, "string": c.string()})
            elif typ == 2:
                entries.append({"key": key, "list": [c.string() for _ in range(c.uv())]})
            else:
                raise Bad("unknown value type")
    except Bad:
        damage.append({"offset": base_off + start, "bytes_lost": len(payload) - start})
    return entries


def events(payload, base_off, t, damage):
    c, out = Cursor(payload), []
    while c.i < len(payload):
        start = c.i
        try:
            code = c.u8()
            t += c.uv()
            if t >= 2**64:
                raise Bad("time over 64 bits")
            e = {"type": None, "t": t}
            if code >= 0x80:
                n = c.uv()
                c.raw(n)
                e.update(type="skipped", code=code, length=n)
            elif code == 0x01:
                e.update(type="string", id=c.ident(), value=c.string())
            elif code == 0x02:
                e.update(type="frame", id=c.ident(), flags=c.uv(), function=c.ident(), file=c.ident(), line=c.uv())
            elif code == 0x03:
                e.update(type="native_frame", id=c.ident(), flags=c.uv(), image=c.ident(), address=c.uv())
            elif code == 0x04:
                e.update(type="stack", id=c.ident())
                n = c.uv()
                if n > MAX_STACK:
                    raise Bad("stack too deep")
                e["frames"] = [c.ident() for _ in range(n)]
            elif code == 0x05:
                e.update(type="image", id=c.ident(), path=c.ident(), load_bias=c.uv(), start=c.uv(), end=c.uv())
                n = c.uv()
                if n > MAX_BUILD_ID:
                    raise Bad("build-id too long")
                e["build_id"] = c.raw(n).hex()
            elif code == 0x06:
                e.update(type="thread", tid=c.ident(), name=c.ident())
            elif code == 0x07:
                e.update(type="greenthread_create", gt=c.ident(), name=c.ident(), spawn_stack=c.ident(), parent=c.ident())
            elif code == 0x08:
                e.update(type="greenthread_exit", gt=c.ident())
            elif code == 0x09:
                e.update(type="running", gt=c.ident(), hub=c.ident())
            elif code == 0x10:
                e.update(type="switch_to_hub")
            elif code in REASONS:
                e.update(type="switch", to=c.ident(), reason=REASONS[code], ready_dt=c.uv())
            elif code == 0x20:
                v = c.uv()
                e.update(type="io_wait_begin", timeout_ns=None if v == 0 else v - 1)
            elif code == 0x21:
                e.update(type="io_wait_end", nready=c.uv())
            elif code == 0x30:
                e.update(type="stall_begin", tid=c.ident(), gt=c.ident(), since_dt=c.uv())
            elif code == 0x31:
                e.update(type="stall_sample", tid=c.ident(), stack=c.ident(), state=c.uv())
            elif code == 0x32:
                e.update(type="stall_end", gt=c.ident(), duration=c.uv(), stack=c.ident())
            elif code == 0x40:
                e.update(type="dropped", reason=c.uv(), count=c.uv())
            elif code == 0x7F:
                e.update(type="end", chunks=c.uv(), events=c.uv())
            else:
                raise Bad("unknown event type")
        except Bad:
            damage.append({"offset": base_off + start, "bytes_lost": len(payload) - start})
            break
        out.append(e)
    return out


def decode(data):
    if not data:
        raise Bad("empty file")
    if data[:8] != MAGIC[:len(data[:8])] or len(data) >= 8 and data[:8] != MAGIC:
        raise Bad("bad magic")
    if len(data) < 16:
        raise Bad("truncated header")
    major, minor = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    if major != 1:
        raise Bad("unsupported version %d" % major)
    chunks, damage, off, n = [], [], 16, len(data)
    while off < n:
        length = intact(data, off)
        if length is None:
            # Resynchronise: the next offset holding an intact chunk; all before it is lost.
            nxt = off + 1
            while nxt < n and intact(data, nxt) is None:
                nxt = data.find(SYNC, nxt + 1)
                if nxt < 0:
                    nxt = n
            damage.append({"offset": off, "bytes_lost": min(nxt, n) - off})
            off = min(nxt, n)
            continue
        h = data[off:off + 32]
        ch = {"offset": off, "kind": h[12], "thread": int.from_bytes(h[24:28], "little"),
              "seq": int.from_bytes(h[28:32], "little"), "base_ns": int.from_bytes(h[16:24], "little")}
        payload = data[off + 32:off + 32 + length]
        if ch["kind"] == 1:
            ch["metadata"] = metadata(payload, off + 32, damage)
        elif ch["kind"] == 2:
            ch["events"] = events(payload, off + 32, ch["base_ns"], damage)
        chunks.append(ch)
        off += 32 + length
    return {"version": [major, minor], "chunks": chunks, "damage": damage,
            "bytes_lost": sum(d["bytes_lost"] for d in damage)}


def main(paths):
    here = os.path.dirname(os.path.abspath(__file__))
    paths = paths or sorted(os.path.join(here, f) for f in os.listdir(here) if f.endswith(".bin"))
    failed = 0
    for p in paths:
        with open(p, "rb") as f:
            got = decode(f.read())
        with open(p[:-4] + ".json", encoding="utf-8") as f:
            want = json.load(f)
        if got == want:
            print("ok    %s" % os.path.basename(p))
        else:
            failed += 1
            print("FAIL  %s" % os.path.basename(p))
            for k in ("version", "damage", "bytes_lost"):
                if got[k] != want[k]:
                    print("      %s: got %r, want %r" % (k, got[k], want[k]))
            for i, (a, b) in enumerate(zip(got["chunks"], want["chunks"])):
                if a != b:
                    print("      chunk %d at %s differs" % (i, b.get("offset")))
                    for j, (x, y) in enumerate(zip(a.get("events", []), b.get("events", []))):
                        if x != y:
                            print("        event %d: got %r, want %r" % (j, x, y))
                            break
                    break
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
