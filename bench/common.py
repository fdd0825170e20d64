"""Helpers the benchmark scripts share."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on, for a server the benchmark starts on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
