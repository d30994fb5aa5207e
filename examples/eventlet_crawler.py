"""The origin story: an Eventlet crawler that mostly behaves.

1000 greenthreads fetch pages from a loopback HTTP server this program starts itself
(an eventlet.wsgi server in a greenthread of the same hub). A few of the pages make
their fetcher do something blocking:

  - an unpatched time.sleep            (someone "rate-limits" with the wrong sleep)
  - a CPU loop                         (a naive parser on a big page)
  - a sqlite3 query that blocks in C   (indexing the page, with no index)
  - a blocking subprocess call         (shelling out to a converter)

Everything else waits for the network like a good greenthread. Every blocking call
freezes all 1000 greenthreads (and the server) while it runs.

    unclog record --threshold 50ms -o crawl.bin -- python3 examples/eventlet_crawler.py
    unclog import crawl.bin -o crawl.db && unclog stalls crawl.db

Runs in a few seconds; prints a summary and exits 0.
"""

import eventlet

# Green sockets only: time, os and subprocess stay the real, blocking ones.
eventlet.monkey_patch(socket=True, select=True)

import http.client  # noqa: E402  (after monkey-patching: green sockets)
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from eventlet import wsgi  # noqa: E402

N_PAGES = 1000
SLOW_PAGES = {137: "sleep", 420: "cpu", 640: "sqlite", 880: "subprocess"}


def app(environ, start_response):
    """The site: page N links to a few others; it answers fast."""
    n = int(environ["PATH_INFO"].strip("/") or 0)
    body = (
        "<html><body><h1>page %d</h1>%s</body></html>"
        % (n, "".join('<a href="/%d">%d</a>' % ((n * 7 + k) % N_PAGES, k) for k in range(20)))
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]


def serve(sock):
    wsgi.server(sock, app, log_output=False, max_size=2000)


def rate_limit():
    time.sleep(0.15)  # blocks the hub: should be eventlet.sleep


def parse_slowly(html):
    words = 0
    end = time.monotonic() + 0.12
    while time.monotonic() < end:  # a CPU-bound "parser"
        words += html.count(b"<a ")
    return words


DB = sqlite3.connect(":memory:")


def index_page(n):
    # a recursive query walking a million rows, all inside sqlite's C code
    return DB.execute(
        "WITH RECURSIVE walk(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM walk "
        "WHERE x < ? + 1000000) SELECT count(*) FROM walk",
        (n, n),
    ).fetchone()[0]


def convert(n):
    subprocess.run(["sleep", "0.1"], check=True)  # waits in waitpid(), blocking the hub


def fetch(port, n, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/%d" % n)
    html = conn.getresponse().read()
    conn.close()
    kind = SLOW_PAGES.get(n)
    if kind == "sleep":
        rate_limit()
    elif kind == "cpu":
        parse_slowly(html)
    elif kind == "sqlite":
        index_page(n)
    elif kind == "subprocess":
        convert(n)
    results[n] = len(html)


def main():
    sock = eventlet.listen(("127.0.0.1", 0), backlog=1024)
    port = sock.getsockname()[1]
    server = eventlet.spawn(serve, sock)
    results = {}
    t0 = time.monotonic()
    pool = eventlet.GreenPool(1000)
    for n in range(N_PAGES):
        pool.spawn(fetch, port, n, results)
    pool.waitall()
    elapsed = time.monotonic() - t0
    server.kill()
    sock.close()
    print("fetched %d pages (%d bytes) in %.2f s" % (len(results), sum(results.values()), elapsed))
    return 0 if len(results) == N_PAGES else 1


if __name__ == "__main__":
    sys.exit(main())
