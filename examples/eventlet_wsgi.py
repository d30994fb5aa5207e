"""An eventlet.wsgi server with one blocking handler, under a bounded stream of
requests from client greenthreads in the same process; exits by itself.

  GET /item/N   fast: green I/O only
  GET /report   slow: builds a report with a blocking sqlite3 query (C code, no
                yield) — every other request in flight waits behind it

    unclog record -o wsgi.bin -- python3 examples/eventlet_wsgi.py
    unclog import wsgi.bin -o wsgi.db && unclog stalls wsgi.db

Prints the latency each kind of request saw, then exits 0.
"""

import eventlet

eventlet.monkey_patch(socket=True, select=True)

import http.client  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from eventlet import wsgi  # noqa: E402

CLIENTS = 20
REQUESTS_PER_CLIENT = 25
DB = sqlite3.connect(":memory:", check_same_thread=False)


def build_report():
    # ~0.1-0.2 s inside sqlite's C code: the hub cannot run meanwhile
    return DB.execute(
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r "
        "WHERE x < 800000) SELECT sum(x) FROM r"
    ).fetchone()[0]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/report":
        body = ("report: %d\n" % build_report()).encode()
    else:
        eventlet.sleep(0.001)  # pretend to wait for a backend, politely
        body = ("item %s\n" % path.rsplit("/", 1)[-1]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def client(port, c, latencies):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(REQUESTS_PER_CLIENT):
        path = "/report" if (c == 3 and i in (5, 15)) else "/item/%d" % (c * 100 + i)
        t0 = time.monotonic()
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        latencies.setdefault("report" if path == "/report" else "item", []).append(time.monotonic() - t0)
        eventlet.sleep(0.005)
    conn.close()


def main():
    sock = eventlet.listen(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = eventlet.spawn(wsgi.server, sock, app, log_output=False)
    latencies = {}
    clients = [eventlet.spawn(client, port, c, latencies) for c in range(CLIENTS)]
    for g in clients:
        g.wait()
    server.kill()
    sock.close()
    for kind in sorted(latencies):
        ls = latencies[kind]
        print(
            "%-6s %4d requests  median %6.1f ms  max %6.1f ms"
            % (kind, len(ls), statistics.median(ls) * 1e3, max(ls) * 1e3)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
