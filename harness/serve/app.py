"""The HTTP side of ``walrus-harness serve``: routes, files and the zip of a run.

Routes::

    /                         the index of runs and campaigns
    /run/<run>/               a run's page          /run/<run>/run.zip   the run, zipped
    /campaign/<campaign>/     a campaign's page     /file/<path>         a file of the store

Every path is resolved inside the store and refused if it leaves it. Bound to 127.0.0.1 unless
``--host`` says otherwise: the store holds node logs and histories, not meant for a network.
"""

import mimetypes
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from harness.serve import pages
from harness.serve.store import Store, read_json

TEXT_TYPES = {
    ".log": "text/plain",
    ".jsonl": "text/plain",
    ".md": "text/plain",
    ".csv": "text/plain",
}
"""Served as text so that a browser shows them instead of downloading them."""


class NotFound(Exception):
    """A path that names nothing in the store; the message says what."""


def run_files(directory: Path) -> list[str]:
    """Every regular file of a run directory, relative to it, with ``/``."""
    return sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and not p.is_symlink()
    )


def log_tails(directory: Path, lines: int = pages.LOG_TAIL) -> dict[str, str]:
    """The last ``lines`` lines of each node's node.log, by node."""
    tails = {}
    nodes = directory / "nodes"
    if nodes.is_dir():
        for node in sorted(nodes.iterdir(), key=lambda p: (len(p.name), p.name)):
            log = node / "node.log"
            if log.is_file():
                tails[node.name] = "\n".join(_tail(log, lines))
    return tails


def _tail(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 64 * 1024))
        return f.read().decode("utf-8", "replace").splitlines()[-lines:]


def zip_run(directory: Path, out) -> None:
    """Write the run directory as a zip archive (paths under the run's own name) into ``out``."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in run_files(directory):
            z.write(directory / rel, f"{directory.parent.name}-{directory.name}/{rel}")


class App:
    """Pages of one store, by path."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _dir(self, rel: str, marker: str) -> Path:
        path = self.store.locate(rel.strip("/"))
        if path is None or not (path / marker).is_file():
            raise NotFound(f"no run or campaign at {rel!r} in the store")
        return path

    def index(self) -> str:
        """The index page."""
        runs, campaigns = self.store.scan()
        return pages.index(runs, campaigns, str(self.store.root))

    def run(self, rel: str) -> str:
        """A run's page."""
        directory = self._dir(rel, "test.json")
        return pages.run_page(
            self.store.run(directory),
            read_json(directory / "results.json"),
            directory,
            run_files(directory),
            log_tails(directory),
        )

    def campaign(self, rel: str) -> str:
        """A campaign's page."""
        directory = self._dir(rel, "summary.csv")
        info = self.store.campaign(directory)
        runs = {}
        for row in info.rows:
            path = self.store.locate(row.run)
            if path is not None and (path / "test.json").is_file():
                runs[row.run] = self.store.run(path)
        return pages.campaign_page(info, runs)

    def file(self, rel: str) -> Path:
        """A file of the store."""
        path = self.store.locate(rel)
        if path is None or not path.is_file():
            raise NotFound(f"no file {rel!r} in the store")
        return path

    def run_dir(self, rel: str) -> Path:
        """A run's directory."""
        return self._dir(rel, "test.json")


def handler_for(app: App, log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving ``app``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "walrus-harness"

        def log_message(self, format: str, *args) -> None:
            log(f"{self.address_string()} {format % args}")

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            try:
                if path == "/":
                    self._html(app.index())
                elif path.startswith("/run/") and path.endswith("/run.zip"):
                    self._zip(app.run_dir(path[len("/run/") : -len("/run.zip")]))
                elif path.startswith("/run/"):
                    self._html(app.run(path[len("/run/") :]))
                elif path.startswith("/campaign/"):
                    self._html(app.campaign(path[len("/campaign/") :]))
                elif path.startswith("/file/"):
                    self._file(app.file(path[len("/file/") :]))
                else:
                    raise NotFound(f"no page {path!r}")
            except NotFound as exc:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", f"{exc}\n".encode())

        def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _html(self, text: str) -> None:
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", text.encode())

        def _file(self, path: Path) -> None:
            kind = TEXT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            kind = kind or "application/octet-stream"
            if kind.startswith("text/"):
                kind += "; charset=utf-8"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile)

        def _zip(self, directory: Path) -> None:
            with tempfile.TemporaryFile() as spool:
                zip_run(directory, spool)
                size = spool.tell()
                spool.seek(0)
                name = f"{directory.parent.name}-{directory.name}.zip"
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(size))
                self.send_header("Content-Disposition", f'attachment; filename="{name}"')
                self.end_headers()
                shutil.copyfileobj(spool, self.wfile)

    return Handler


def make_server(
    store: Path, host: str, port: int, log: Callable[[str], None]
) -> ThreadingHTTPServer:
    """A server of ``store`` bound to (host, port); port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), handler_for(App(Store(store)), log))
    server.daemon_threads = True
    return server
