"""The crawler again, with gevent: 1000 greenlets fetch pages from a loopback
gevent.pywsgi server started in the same process; a few block the loop with an
unpatched time.sleep, a CPU loop, a sqlite3 query in C and a blocking subprocess.

    unclog record -o gcrawl.bin -- python3 examples/gevent_crawler.py

Runs in a few seconds; prints a summary and exits 0.
"""

from gevent import monkey

# Green sockets only: time and subprocess stay the real, blocking ones.
monkey.patch_socket()
monkey.patch_select()

import http.client  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from gevent.pool import Pool  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

N_PAGES = 1000
SLOW_PAGES = {137: "sleep", 420: "cpu", 640: "sqlite", 880: "subprocess"}
DB = sqlite3.connect(":memory:")


def app(environ, start_response):
    n = int(environ["PATH_INFO"].strip("/") or 0)
    body = (
        "<html><body><h1>page %d</h1>%s</body></html>"
        % (n, "".join('<a href="/%d">%d</a>' % ((n * 7 + k) % N_PAGES, k) for k in range(20)))
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]


def rate_limit():
    time.sleep(0.15)  # blocks the loop: should be gevent.sleep


def parse_slowly(html):
    words = 0
    end = time.monotonic() + 0.12
    while time.monotonic() < end:  # a CPU-bound "parser"
        words += html.count(b"<a ")
    return words


def index_page(n):
    return DB.execute(
        "WITH RECURSIVE walk(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM walk "
        "WHERE x < ? + 1000000) SELECT count(*) FROM walk",
        (n, n),
    ).fetchone()[0]


def convert(n):
    subprocess.run(["sleep", "0.1"], check=True)  # waits in waitpid(), blocking the loop


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
    server = WSGIServer(("127.0.0.1", 0), app, log=None, backlog=1024)
    server.start()
    port = server.server_port
    results = {}
    t0 = time.monotonic()
    pool = Pool(1000)
    for n in range(N_PAGES):
        pool.spawn(fetch, port, n, results)
    pool.join()
    elapsed = time.monotonic() - t0
    server.stop()
    print("fetched %d pages (%d bytes) in %.2f s" % (len(results), sum(results.values()), elapsed))
    return 0 if len(results) == N_PAGES else 1


if __name__ == "__main__":
    sys.exit(main())
