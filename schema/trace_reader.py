#!/usr/bin/env python3
"""A reader of the unclog trace format, version 1, written from schema/trace-format.md alone.

It is the project's second reader (the first is Swift's UnclogTrace): made from the spec
and nothing else, it shows the spec is precise enough to decode any trace, and it is
what other tools can copy (one file, standard library only, Python 3.9+).

    decode(data)            the canonical JSON value of spec §9: chunks, events, damage.
                            schema/vectors/check.py compares it with every vector.
    read_trace(path)        a Trace: tables of the decoded events (strings, frames,
                            stacks, greenthreads, switches, I/O waits, stalls, samples)
                            and helpers (stalls(), victims(), call_site()); the Python
                            recorder's tests and benchmark read their traces with it.

Damage (spec §2.2) never raises: a bad chunk is skipped up to the next intact one, a
malformed event ends its chunk's decoding, and both are listed in `damage`. Only a file
that is not a trace at all (bad magic, unknown major version) raises DecodeError.
"""

import json
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
KIND_METADATA = 1
KIND_EVENTS = 2
REASONS = {0x11: "timer", 0x12: "io", 0x13: "spawn", 0x14: "explicit", 0x15: "other"}
REASON_CODES = {name: code for code, name in REASONS.items()}


class DecodeError(Exception):
    """A field that cannot be decoded (spec §2.2), or a file that is not a trace."""


class Cursor:
    def __init__(self, b):
        self.b, self.i = b, 0

    def u8(self):
        if self.i >= len(self.b):
            raise DecodeError("past the end")
        self.i += 1
        return self.b[self.i - 1]

    def uv(self):
        v = 0
        for k in range(10):
            byte = self.u8()
            if k == 9 and byte > 1:
                raise DecodeError("varint over 64 bits")
            v |= (byte & 0x7F) << (7 * k)
            if byte < 0x80:
                return v
        raise DecodeError("varint longer than 10 bytes")

    def ident(self):
        v = self.uv()
        if v > MAX_ID:
            raise DecodeError("id out of range")
        return v

    def raw(self, n):
        if n > len(self.b) - self.i:
            raise DecodeError("past the end")
        self.i += n
        return self.b[self.i - n : self.i]

    def string(self):
        n = self.uv()
        if n > MAX_STRING:
            raise DecodeError("string over the limit")
        return self.raw(n).decode("utf-8", "replace")


def intact(data, off):
    """The payload length of an intact chunk at `off`, else None (spec §2.2)."""
    if data[off : off + 4] != SYNC or off + 32 > len(data):
        return None
    length = int.from_bytes(data[off + 4 : off + 8], "little")
    if length > MAX_PAYLOAD or off + 32 + length > len(data):
        return None
    if zlib.crc32(data[off + 12 : off + 32 + length]) != int.from_bytes(data[off + 8 : off + 12], "little"):
        return None
    return length


def decode_metadata(payload, base_off, damage):
    """A metadata payload's entries ({"key", "uint"|"string"|"list"}), up to any damage."""
    c, entries, start = Cursor(payload), [], 0
    try:
        count = c.uv()
        if count > MAX_META:
            raise DecodeError("too many entries")
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
                raise DecodeError("unknown value type")
    except DecodeError:
        damage.append({"offset": base_off + start, "bytes_lost": len(payload) - start})
    return entries


def decode_events(payload, base_off, t, damage):
    """An events payload's events (spec §9 objects, absolute times), up to any damage."""
    c, out = Cursor(payload), []
    while c.i < len(payload):
        start = c.i
        try:
            code = c.u8()
            t += c.uv()
            if t >= 2**64:
                raise DecodeError("time over 64 bits")
            e = {"type": None, "t": t}
            if code >= 0x80:
                n = c.uv()
                c.raw(n)
                e.update(type="skipped", code=code, length=n)
            elif code == 0x01:
                e.update(type="string", id=c.ident(), value=c.string())
            elif code == 0x02:
                e.update(
                    type="frame", id=c.ident(), flags=c.uv(), function=c.ident(), file=c.ident(), line=c.uv()
                )
            elif code == 0x03:
                e.update(type="native_frame", id=c.ident(), flags=c.uv(), image=c.ident(), address=c.uv())
            elif code == 0x04:
                e.update(type="stack", id=c.ident())
                n = c.uv()
                if n > MAX_STACK:
                    raise DecodeError("stack too deep")
                e["frames"] = [c.ident() for _ in range(n)]
            elif code == 0x05:
                e.update(
                    type="image", id=c.ident(), path=c.ident(), load_bias=c.uv(), start=c.uv(), end=c.uv()
                )
                n = c.uv()
                if n > MAX_BUILD_ID:
                    raise DecodeError("build-id too long")
                e["build_id"] = c.raw(n).hex()
            elif code == 0x06:
                e.update(type="thread", tid=c.ident(), name=c.ident())
            elif code == 0x07:
                e.update(
                    type="greenthread_create",
                    gt=c.ident(),
                    name=c.ident(),
                    spawn_stack=c.ident(),
                    parent=c.ident(),
                )
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
                raise DecodeError("unknown event type")
        except DecodeError:
            damage.append({"offset": base_off + start, "bytes_lost": len(payload) - start})
            break
        out.append(e)
    return out


def header(data):
    """(major, minor) of the file header; DecodeError if this is not a v1 trace."""
    if not data:
        raise DecodeError("empty file")
    if data[:8] != MAGIC[: len(data[:8])] or len(data) >= 8 and data[:8] != MAGIC:
        raise DecodeError("bad magic")
    if len(data) < 16:
        raise DecodeError("truncated header")
    major, minor = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    if major != 1:
        raise DecodeError("unsupported version %d" % major)
    return major, minor


def iter_chunks(data, damage):
    """The intact chunks after the header, decoded one at a time (spec §9 objects);
    damage found on the way is appended to `damage` in file order."""
    off, n = 16, len(data)
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
        h = data[off : off + 32]
        ch = {
            "offset": off,
            "kind": h[12],
            "thread": int.from_bytes(h[24:28], "little"),
            "seq": int.from_bytes(h[28:32], "little"),
            "base_ns": int.from_bytes(h[16:24], "little"),
        }
        payload = data[off + 32 : off + 32 + length]
        if ch["kind"] == KIND_METADATA:
            ch["metadata"] = decode_metadata(payload, off + 32, damage)
        elif ch["kind"] == KIND_EVENTS:
            ch["events"] = decode_events(payload, off + 32, ch["base_ns"], damage)
        yield ch
        off += 32 + length


def decode(data):
    """The canonical JSON value of spec §9 for a whole file."""
    major, minor = header(data)
    damage = []
    chunks = list(iter_chunks(data, damage))
    return {
        "version": [major, minor],
        "chunks": chunks,
        "damage": damage,
        "bytes_lost": sum(d["bytes_lost"] for d in damage),
    }


class Trace:
    """A decoded trace as tables. Ids are global to the file (spec §4.3): a table holds
    the first definition of each id; a different redefinition counts in `conflicts`."""

    def __init__(self):
        self.version = None
        self.chunks = []  # chunk headers (spec §9 objects without their events)
        self.damage = []  # spec §9 damage entries: {"offset", "bytes_lost"}
        self.metadata = {}  # key -> value (later metadata chunks add or override)
        self.strings = {}
        self.frames = {}  # id -> (flags, function, file, line)
        self.native_frames = {}  # id -> (flags, image, address)
        self.images = {}  # id -> (path, load_bias, start, end, build_id hex)
        self.stacks = {}  # id -> (frame ids, innermost first)
        self.threads = {}  # tid -> name id
        self.greenthreads = {}  # id -> dict(name, spawn_stack, parent, time, thread)
        self.exits = {}  # gt -> time
        self.switches = []  # dict(thread, time, code, frm, to, ready_ns, hub)
        self.io_waits = []  # dict(thread, begin, end, timeout, nready)
        self.stall_ends = []  # dict(thread, time, gt, duration, stack)
        self.stall_begins = []  # dict(tid, gt, time, since)
        self.samples = []  # dict(tid, time, stack, state)
        self.dropped = []  # (reason, count)
        self.end = None  # (chunks, events)
        self.events = 0  # events decoded in events chunks (skipped ones included)
        self.conflicts = 0
        self.skipped_chunks = 0  # intact chunks of an unknown kind
        self.seq_gaps = 0  # events chunks whose seq does not follow their thread's last
        self.running = []  # (thread, time, gt, hub)

    # --- helpers ---------------------------------------------------------------
    def string(self, sid):
        if sid == 0:
            return None
        return self.strings.get(sid, "<string %d>" % sid)

    def frame(self, fid):
        f = self.frames.get(fid)
        if f is None:
            return None
        flags, fn, file, line = f
        return {
            "id": fid,
            "internal": bool(flags & 1),
            "library": bool(flags & 8),
            "function": self.string(fn),
            "file": self.string(file),
            "line": line,
        }

    def stack(self, sid):
        return [self.frame(f) for f in self.stacks.get(sid, [])]

    def call_site(self, sid):
        """Innermost frame that is neither internal nor library (flag bits 0 and 3),
        else the innermost library frame."""
        lib = None
        for fr in self.stack(sid):
            if fr is None or fr["internal"]:
                continue
            if not fr["library"]:
                return fr
            if lib is None:
                lib = fr
        return lib

    def gt_name(self, gid):
        g = self.greenthreads.get(gid)
        return self.string(g["name"]) if g else None

    def stalls(self):
        """StallEnd records joined with the watchdog samples inside them, with a call
        site: the most frequent innermost non-internal frame among the samples, or the
        StallEnd stack's if there are none."""
        out = []
        tid_samples = {}
        for s in self.samples:
            tid_samples.setdefault(s["tid"], []).append(s)
        for se in self.stall_ends:
            begin = se["time"] - se["duration"]
            ss = [s for s in tid_samples.get(se["thread"], []) if begin <= s["time"] <= se["time"]]
            counts = {}
            for s in ss:
                fr = self.call_site(s["stack"])
                if fr is not None:
                    k = (fr["file"], fr["line"], fr["function"])
                    counts[k] = counts.get(k, 0) + 1
            if counts:
                site = max(counts.items(), key=lambda kv: kv[1])[0]
            else:
                fr = self.call_site(se["stack"])
                site = (fr["file"], fr["line"], fr["function"]) if fr else (None, 0, None)
            out.append(
                {
                    "thread": se["thread"],
                    "gt": se["gt"],
                    "name": self.gt_name(se["gt"]),
                    "begin": begin,
                    "end": se["time"],
                    "duration": se["duration"],
                    "file": site[0],
                    "line": site[1],
                    "function": site[2],
                    "samples": len(ss),
                    "end_stack": se["stack"],
                }
            )
        out.sort(key=lambda s: s["begin"])
        return out

    def victims(self, stall):
        """Switches on the stall's thread whose ready interval overlaps the stall
        (spec §4.3, "Ready time"): (greenthread, ns delayed)."""
        res = []
        for sw in self.switches:
            if sw["thread"] != stall["thread"] or sw["to"] is None:
                continue
            lo = max(sw["ready_ns"], stall["begin"])
            hi = min(sw["time"], stall["end"])
            if hi > lo:
                res.append((sw["to"], hi - lo))
        return res

    # --- building the tables ------------------------------------------------------
    def _define(self, table, key, value):
        old = table.get(key)
        if old is None:
            table[key] = value
        elif old != value:
            self.conflicts += 1

    def _add_events(self, thread, events):
        cur = 0  # the running greenthread and the hub (spec §4.1), per chunk
        hub = 0
        for e in events:
            typ, t = e["type"], e["t"]
            self.events += 1
            if typ == "switch":
                to = e["to"]
                self.switches.append(
                    {
                        "thread": thread,
                        "time": t,
                        "code": REASON_CODES[e["reason"]],
                        "frm": cur,
                        "to": to,
                        "ready_ns": t - e["ready_dt"],
                        "hub": False,
                    }
                )
                cur = to
            elif typ == "switch_to_hub":
                self.switches.append(
                    {
                        "thread": thread,
                        "time": t,
                        "code": 0x10,
                        "frm": cur,
                        "to": hub or None,
                        "ready_ns": t,
                        "hub": True,
                    }
                )
                cur = hub
            elif typ == "string":
                self._define(self.strings, e["id"], e["value"])
            elif typ == "frame":
                self._define(self.frames, e["id"], (e["flags"], e["function"], e["file"], e["line"]))
            elif typ == "native_frame":
                self._define(self.native_frames, e["id"], (e["flags"], e["image"], e["address"]))
            elif typ == "stack":
                self._define(self.stacks, e["id"], tuple(e["frames"]))
            elif typ == "image":
                self._define(
                    self.images, e["id"], (e["path"], e["load_bias"], e["start"], e["end"], e["build_id"])
                )
            elif typ == "thread":
                self.threads[e["tid"]] = e["name"]
            elif typ == "greenthread_create":
                self._define(
                    self.greenthreads,
                    e["gt"],
                    {
                        "name": e["name"],
                        "spawn_stack": e["spawn_stack"],
                        "parent": e["parent"],
                        "time": t,
                        "thread": thread,
                    },
                )
            elif typ == "greenthread_exit":
                self.exits[e["gt"]] = t
            elif typ == "running":
                cur, hub = e["gt"], e["hub"]
                self.running.append((thread, t, cur, hub))
            elif typ == "io_wait_begin":
                self.io_waits.append(
                    {"thread": thread, "begin": t, "end": None, "timeout": e["timeout_ns"], "nready": None}
                )
            elif typ == "io_wait_end":
                for w in reversed(self.io_waits):
                    if w["thread"] == thread and w["end"] is None:
                        w["end"] = t
                        w["nready"] = e["nready"]
                        break
            elif typ == "stall_begin":
                self.stall_begins.append(
                    {"tid": e["tid"], "gt": e["gt"], "time": t, "since": t - e["since_dt"]}
                )
            elif typ == "stall_sample":
                self.samples.append({"tid": e["tid"], "time": t, "stack": e["stack"], "state": e["state"]})
            elif typ == "stall_end":
                self.stall_ends.append(
                    {
                        "thread": thread,
                        "time": t,
                        "gt": e["gt"],
                        "duration": e["duration"],
                        "stack": e["stack"],
                    }
                )
            elif typ == "dropped":
                self.dropped.append((e["reason"], e["count"]))
            elif typ == "end":
                self.end = (e["chunks"], e["events"])


def read_trace(path_or_bytes):
    """Decode a whole trace file (a path, or its bytes) into a Trace."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    tr = Trace()
    tr.version = header(data)
    last_seq = {}
    for ch in iter_chunks(data, tr.damage):
        kind, thread = ch["kind"], ch["thread"]
        if kind == KIND_METADATA:
            for entry in ch.pop("metadata"):
                key = entry.pop("key")
                (tr.metadata[key],) = entry.values()
        elif kind == KIND_EVENTS:
            seq = ch["seq"]
            if thread in last_seq and seq != last_seq[thread] + 1:
                tr.seq_gaps += 1
            last_seq[thread] = seq
            tr._add_events(thread, ch.pop("events"))
        else:
            tr.skipped_chunks += 1
        tr.chunks.append(ch)
    return tr


def main(argv):
    """python3 schema/trace_reader.py FILE: print the file's canonical JSON (spec §9)."""
    if len(argv) != 1:
        sys.stderr.write("usage: trace_reader.py TRACE_FILE\n")
        return 2
    with open(argv[0], "rb") as f:
        json.dump(decode(f.read()), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
