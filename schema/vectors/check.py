#!/usr/bin/env python3
"""Checks the conformance vectors with the reader written from the spec alone
(schema/trace_reader.py): decodes each schema/vectors/NAME.bin into the canonical JSON
value of spec section 9 and compares it with NAME.json. Exit status 1 on any difference.

    python3 schema/vectors/check.py [NAME.bin ...]

It exists to show that the spec alone is enough to reproduce the vectors (and that the
vectors say what the spec says). Standard library only.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trace_reader import decode  # noqa: E402  (schema/trace_reader.py)


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
