"""An independent reader of the unclog trace format v1, written from
schema/trace-format.md only (it doubles as a check that the spec is precise).

    t = read_trace(path)       # -> Trace
    t.stalls()                 # stalls with duration, call site, samples
"""
import struct
import zlib

MAGIC = b"\x89UNCLOG\n"
SYNC = b"\xffUCK"
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_ID = 2 ** 32 - 1


class DecodeError(Exception):
    pass


class _Cursor:
    __slots__ = ("b", "i", "end")

    def __init__(self, b, i=0, end=None):
        self.b = b
        self.i = i
        self.end = len(b) if end is None else end

    def u8(self):
        if self.i >= self.end:
            raise DecodeError("field past the end of the payload")
        v = self.b[self.i]
        self.i += 1
        return v

    def uv(self):
        result = 0
        shift = 0
        for k in range(10):
            if self.i >= self.end:
                raise DecodeError("varint runs past the end of the chunk")
            byte = self.b[self.i]
            self.i += 1
            if k == 9 and byte > 1:
                raise DecodeError("varint overflow")
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
        raise DecodeError("varint longer than 10 bytes")

    def ident(self):
        v = self.uv()
        if v > MAX_ID:
            raise DecodeError("id out of range: %d" % v)
        return v

    def raw(self, n):
        if n > self.end - self.i:
            raise DecodeError("field past the end of the payload")
        v = bytes(self.b[self.i:self.i + n])
        self.i += n
        return v

    def string(self):
        n = self.uv()
        if n > 65536:
            raise DecodeError("string too long")
        return self.raw(n).decode("utf-8", "replace")


class Chunk:
    def __init__(self, offset, kind, flags, base_ns, thread, seq, payload):
        self.offset = offset
        self.kind = kind
        self.flags = flags
        self.base_ns = base_ns
        self.thread = thread
        self.seq = seq
        self.payload = payload


class Trace:
    def __init__(self):
        self.version = None
        self.chunks = []
        self.damage = []          # (offset, message)
        self.metadata = {}
        self.strings = {}
        self.frames = {}          # id -> (flags, function, file, line)
        self.stacks = {}          # id -> [frame ids]
        self.threads = {}         # tid -> name id
        self.greenthreads = {}    # id -> dict
        self.exits = {}           # gt -> time
        self.switches = []        # dict(thread, time, code, frm, to, ready_ns)
        self.io_waits = []        # dict(thread, begin, end, timeout, nready)
        self.stall_ends = []      # dict(thread, time, gt, duration, stack)
        self.stall_begins = []    # dict(tid, gt, time, since)
        self.samples = []         # dict(tid, time, stack, state)
        self.dropped = []         # (reason, count)
        self.end = None           # (chunks, events)
        self.events = 0
        self.conflicts = 0
        self.skipped_chunks = 0
        self.seq_gaps = 0
        self.running = []

    # --- helpers for tests ------------------------------------------------------
    def string(self, sid):
        if sid == 0:
            return None
        return self.strings.get(sid, "<string %d>" % sid)

    def frame(self, fid):
        f = self.frames.get(fid)
        if f is None:
            return None
        flags, fn, file, line = f
        return {"id": fid, "internal": bool(flags & 1), "library": bool(flags & 8),
                "function": self.string(fn),
                "file": self.string(file), "line": line}

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
            ss = [s for s in tid_samples.get(se["thread"], [])
                  if begin <= s["time"] <= se["time"]]
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
            out.append({"thread": se["thread"], "gt": se["gt"], "name": self.gt_name(se["gt"]),
                        "begin": begin, "end": se["time"], "duration": se["duration"],
                        "file": site[0], "line": site[1], "function": site[2],
                        "samples": len(ss), "end_stack": se["stack"]})
        out.sort(key=lambda s: s["begin"])
        return out

    def victims(self, stall):
        """Switches on the stall's thread whose ready interval overlaps the stall."""
        res = []
        for sw in self.switches:
            if sw["thread"] != stall["thread"] or sw["to"] is None:
                continue
            lo = max(sw["ready_ns"], stall["begin"])
            hi = min(sw["time"], stall["end"])
            if hi > lo:
                res.append((sw["to"], hi - lo))
        return res


def _decode_metadata(trace, ch):
    c = _Cursor(ch.payload)
    count = c.uv()
    if count > 4096:
        raise DecodeError("too many metadata entries")
    for _ in range(count):
        key = c.string()
        typ = c.u8()
        if typ == 0:
            val = c.uv()
        elif typ == 1:
            val = c.string()
        elif typ == 2:
            n = c.uv()
            val = [c.string() for _ in range(n)]
        else:
            raise DecodeError("unknown metadata value type %d" % typ)
        trace.metadata[key] = val


def _define(trace, table, key, value):
    old = table.get(key)
    if old is None:
        table[key] = value
    elif old != value:
        trace.conflicts += 1


def _decode_events(trace, ch):
    c = _Cursor(ch.payload)
    t = ch.base_ns
    cur = 0
    hub = 0
    thread = ch.thread
    while c.i < c.end:
        typ = c.u8()
        t += c.uv()
        if typ >= 0x80:
            n = c.uv()
            c.raw(n)
            trace.events += 1
            continue
        if typ == 0x01:
            sid = c.ident()
            _define(trace, trace.strings, sid, c.string())
        elif typ == 0x02:
            fid = c.ident()
            flags = c.uv()
            fn = c.ident()
            file = c.ident()
            line = c.uv()
            _define(trace, trace.frames, fid, (flags, fn, file, line))
        elif typ == 0x03:
            fid = c.ident()
            c.uv()
            c.ident()
            c.uv()
        elif typ == 0x04:
            sid = c.ident()
            n = c.uv()
            if n > 1024:
                raise DecodeError("stack deeper than 1024")
            _define(trace, trace.stacks, sid, tuple(c.ident() for _ in range(n)))
        elif typ == 0x05:
            c.ident(); c.ident(); c.uv(); c.uv(); c.uv(); c.raw(c.uv())
        elif typ == 0x06:
            tid = c.uv()
            trace.threads[tid] = c.ident()
        elif typ == 0x07:
            gt = c.ident()
            name = c.ident()
            stack = c.ident()
            parent = c.ident()
            _define(trace, trace.greenthreads, gt,
                    {"name": name, "spawn_stack": stack, "parent": parent, "time": t,
                     "thread": thread})
        elif typ == 0x08:
            trace.exits[c.ident()] = t
        elif typ == 0x09:
            cur = c.ident()
            hub = c.ident()
            trace.running.append((thread, t, cur, hub))
        elif typ == 0x10:
            trace.switches.append({"thread": thread, "time": t, "code": typ, "frm": cur,
                                   "to": hub or None, "ready_ns": t, "hub": True})
            cur = hub
        elif 0x11 <= typ <= 0x15:
            to = c.ident()
            rdt = c.uv()
            trace.switches.append({"thread": thread, "time": t, "code": typ, "frm": cur,
                                   "to": to, "ready_ns": t - rdt, "hub": False})
            cur = to
        elif typ == 0x20:
            to = c.uv()
            trace.io_waits.append({"thread": thread, "begin": t, "end": None,
                                   "timeout": None if to == 0 else to - 1, "nready": None})
        elif typ == 0x21:
            n = c.uv()
            for w in reversed(trace.io_waits):
                if w["thread"] == thread and w["end"] is None:
                    w["end"] = t
                    w["nready"] = n
                    break
        elif typ == 0x30:
            tid = c.uv()
            gt = c.ident()
            since = c.uv()
            trace.stall_begins.append({"tid": tid, "gt": gt, "time": t, "since": t - since})
        elif typ == 0x31:
            tid = c.uv()
            stack = c.ident()
            state = c.uv()
            trace.samples.append({"tid": tid, "time": t, "stack": stack, "state": state})
        elif typ == 0x32:
            gt = c.ident()
            dur = c.uv()
            stack = c.ident()
            trace.stall_ends.append({"thread": thread, "time": t, "gt": gt,
                                     "duration": dur, "stack": stack})
        elif typ == 0x40:
            trace.dropped.append((c.uv(), c.uv()))
        elif typ == 0x7F:
            trace.end = (c.uv(), c.uv())
        else:
            raise DecodeError("unknown event type 0x%02x" % typ)
        trace.events += 1


def read_trace(path_or_bytes):
    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else \
        open(path_or_bytes, "rb").read()
    tr = Trace()
    if len(data) < 16 or data[:8] != MAGIC:
        raise DecodeError("not an unclog trace (bad magic)")
    major, minor, _ = struct.unpack_from("<HHI", data, 8)
    if major != 1:
        raise DecodeError("unsupported trace format version %d" % major)
    tr.version = (major, minor)
    off = 16
    n = len(data)
    last_seq = {}

    def intact(o):
        if data[o:o + 4] != SYNC or o + 32 > n:
            return None
        length, crc = struct.unpack_from("<II", data, o + 4)
        if length > MAX_PAYLOAD or o + 32 + length > n:
            return None
        if zlib.crc32(data[o + 12:o + 32 + length]) & 0xFFFFFFFF != crc:
            return None
        return length

    first = True
    while off < n:
        length = intact(off)
        if length is None:
            if data[off:off + 4] == SYNC and off + 8 <= n:
                ln = struct.unpack_from("<I", data, off + 4)[0]
                if off + 32 + ln > n and ln <= MAX_PAYLOAD and \
                        data.find(SYNC, off + 1) == -1:
                    tr.damage.append((off, "truncated"))
                    break
            # resynchronise
            nxt = off + 1
            while True:
                nxt = data.find(SYNC, nxt)
                if nxt == -1 or intact(nxt) is not None:
                    break
                nxt += 1
            if nxt == -1:
                tr.damage.append((off, "truncated or damaged to end of file (%d bytes lost)" % (n - off)))
                break
            tr.damage.append((off, "damaged: %d bytes lost" % (nxt - off)))
            off = nxt
            continue
        kind, flags, _r, base, thread, seq = struct.unpack_from("<BBHQII", data, off + 12)
        ch = Chunk(off, kind, flags, base, thread, seq, data[off + 32:off + 32 + length])
        tr.chunks.append(ch)
        if kind == 2:
            if thread in last_seq and seq != last_seq[thread] + 1:
                tr.seq_gaps += 1
            last_seq[thread] = seq
        try:
            if kind == 1:
                _decode_metadata(tr, ch)
            elif kind == 2:
                _decode_events(tr, ch)
            else:
                tr.skipped_chunks += 1
        except DecodeError as e:
            tr.damage.append((off + 32, "in chunk: %s" % e))
        first = False
        off += 32 + length
    return tr
