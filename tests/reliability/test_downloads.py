"""MNIST downloads, against real local servers: only HTTPS, and only files whose MD5 matches are kept."""

from __future__ import annotations

import functools
import hashlib
import http.server
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.mnist import datasets
from runners.mnist import loader as mnist
from runners.mnist.loader import MnistError

BODY = b"pretend this is t10k-labels"


class Server:
    """A local HTTP(S) server answering every GET with `body` (or a redirect), counting requests."""

    def __init__(self, body: bytes, context: ssl.SSLContext | None = None, redirect: str = "") -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                outer.requests.append(self.path)
                if redirect:
                    self.send_response(302)
                    self.send_header("Location", redirect + self.path)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client context trusting it."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


def test_a_file_with_the_wrong_md5_is_discarded(tls, servers, tmp_path: Path) -> None:
    server = Server(BODY, tls[0])
    servers.append(server)
    opener = functools.partial(urllib.request.urlopen, context=tls[1])
    with pytest.raises(MnistError) as err:
        mnist.download("test_labels", tmp_path / "cache", mirrors=(server.url,), opener=opener)
    assert "MD5 mismatch" in str(err.value) and "t10k-labels-idx1-ubyte.gz" in str(err.value)
    assert server.requests == ["/mnist/t10k-labels-idx1-ubyte.gz"]  # it was served, then thrown away
    assert list((tmp_path / "cache").iterdir()) == []  # no partial or unverified file left


def test_a_file_with_the_right_md5_is_kept(tls, servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = datasets.MNIST_FILES["test_labels"][0]
    monkeypatch.setitem(datasets.MNIST_FILES, "test_labels", (name, hashlib.md5(BODY).hexdigest()))
    server = Server(BODY, tls[0])
    servers.append(server)
    opener = functools.partial(urllib.request.urlopen, context=tls[1])
    path = mnist.download("test_labels", tmp_path / "cache", mirrors=(server.url,), opener=opener)
    assert path.read_bytes() == BODY  # the same server and client work: the refusal above is the MD5


def test_http_mirrors_are_refused_without_a_request(servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = datasets.MNIST_FILES["test_labels"][0]
    monkeypatch.setitem(datasets.MNIST_FILES, "test_labels", (name, hashlib.md5(BODY).hexdigest()))
    server = Server(BODY)  # plain HTTP, serving the "right" bytes
    servers.append(server)
    with pytest.raises(MnistError) as err:
        mnist.download("test_labels", tmp_path / "cache", mirrors=(server.url,))
    assert "refused (only https:// mirrors are used)" in str(err.value)
    assert server.requests == []
    monkeypatch.setattr(mnist, "MIRRORS", (server.url,))
    monkeypatch.setenv("LIVING_DATA_CACHE", str(tmp_path / "dl"))
    monkeypatch.delenv("LIVING_MNIST_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # away from ./data/mnist and ../shared/data/mnist
    with pytest.raises(MnistError, match="refused"):  # load_mnist with download=True, nothing local
        mnist.load_mnist(str(tmp_path / "empty"), download=True)
    assert server.requests == []


def test_a_redirect_to_http_is_refused(tls, servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = datasets.MNIST_FILES["test_labels"][0]
    monkeypatch.setitem(datasets.MNIST_FILES, "test_labels", (name, hashlib.md5(BODY).hexdigest()))
    plain = Server(BODY)
    secure = Server(BODY, tls[0], redirect=plain.url.removesuffix("/mnist/"))
    servers.extend([plain, secure])
    opener = mnist.https_opener(context=tls[1])
    with pytest.raises(MnistError, match="refused redirect to http://"):
        mnist.download("test_labels", tmp_path / "cache", mirrors=(secure.url,), opener=opener)
    assert plain.requests == []
