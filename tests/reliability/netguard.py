"""Copied as sitecustomize.py by toys.network_guard: in every Python process started with it on
PYTHONPATH, each outgoing connection attempt (or name lookup) is recorded in $LIVING_NET_LOG and
refused loudly. Not imported by the tests themselves."""

from __future__ import annotations

import os
import socket
from typing import Any

_LOG = os.environ["LIVING_NET_LOG"]


def _record(what: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {what}\n")


def _connect(self: socket.socket, address: Any, *args: Any) -> Any:
    _record(f"connect {self.family!r} {address!r}")
    raise OSError(f"network blocked by the test guard: connect to {address!r}")


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _record(f"getaddrinfo {host!r}")
    raise socket.gaierror(f"network blocked by the test guard: lookup of {host!r}")


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
    _record(f"create_connection {address!r}")
    raise OSError(f"network blocked by the test guard: connect to {address!r}")


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect  # type: ignore[method-assign,assignment]
socket.getaddrinfo = _getaddrinfo
socket.create_connection = _create_connection
