"""`make notebooks`: run every notebook here against a unclog database and render it.

    python notebooks/render.py [--db DB] [--out DIR]

Each notebook is executed headless (nbclient, the project's virtualenv kernel) with
UNCLOG_DB=DB, and written to DIR (default .demo/notebooks/) twice: NAME.ipynb with its outputs,
and NAME.html, a standalone page with the figures embedded, to open in a browser. The
notebooks in notebooks/ themselves stay without outputs (that is how they are committed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, db: str, timeout: int = 300) -> nbformat.NotebookNode:
    """Runs the notebook at `path` with UNCLOG_DB=db; raises on the first failing cell."""
    nb = nbformat.read(path, as_version=4)
    os.environ["UNCLOG_DB"] = os.path.abspath(db)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.environ.get("UNCLOG_DB", ".demo/crawler.db"))
    ap.add_argument("--out", default=".demo/notebooks")
    args = ap.parse_args()
    if not os.path.isfile(args.db):
        print(f"render: {args.db}: no such database (run `make demo` first, or pass --db)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        from nbconvert import HTMLExporter
    except ImportError:  # rendering to HTML is optional; the executed notebooks are still written
        HTMLExporter = None
    for path in sorted(HERE.glob("*.ipynb")):
        nb = execute(path, args.db)
        nbformat.write(nb, out / path.name)
        written = [str(out / path.name)]
        if HTMLExporter is not None:
            html, _ = HTMLExporter().from_notebook_node(nb)
            (out / (path.stem + ".html")).write_text(html, encoding="utf-8")
            written.append(str(out / (path.stem + ".html")))
        print(f"{path.name}: " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
