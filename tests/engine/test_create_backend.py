"""create_backend returns one Backend object, which closes itself as a context manager."""

from __future__ import annotations

from gsrender.engine.backends import create_backend
from gsrender.engine.backends.base import Backend


def test_create_backend_returns_one_backend_with_its_auto_note():
    named = create_backend("onnxruntime", threads=1)
    auto = create_backend("auto", threads=1)
    try:
        assert isinstance(named, Backend) and named.auto_note is None  # asked for by name: no note
        assert isinstance(auto, Backend) and isinstance(auto.auto_note, str) and auto.auto_note
    finally:
        named.close()
        auto.close()


def test_a_backend_is_a_context_manager_that_closes_on_exit(monkeypatch):
    closed = []
    with create_backend(keyer="classic") as backend:
        monkeypatch.setattr(backend, "close", lambda: closed.append(backend.name))
        assert backend.name == "classic"
    assert closed == ["classic"]
