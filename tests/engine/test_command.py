"""run_command: how every verb ends -- one line and a documented exit code, never a traceback."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import pytest

from gsrender.engine import command
from gsrender.engine.command import EXIT_BROKEN_PIPE, run_command
from gsrender.engine.errors import BackendError, UsageError


def raising(exc: BaseException):
    def body(argv: list[str]) -> int:
        raise exc

    return body


def test_the_body_s_code_is_the_exit_code():
    assert run_command(lambda argv: 3, [], "info") == 3
    assert run_command(lambda argv: None, [], "info") == 0  # a main that returns nothing succeeded


def test_argv_none_is_the_process_arguments(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gsrender", "a", "b"])
    seen = []
    run_command(lambda argv: seen.append(argv) or 0, None, None)
    assert seen == [["a", "b"]]


def test_a_gsrender_error_is_its_message_and_code(capsys):
    assert run_command(raising(BackendError("m.onnx", "model file not found")), [], "job") == 5
    assert capsys.readouterr().err == "gsrender: error: m.onnx: model file not found\n"
    body = raising(UsageError(None, "bad"))
    assert run_command(body, [], "build-engine", label="gsrender build-engine") == 2
    assert capsys.readouterr().err == "gsrender build-engine: error: bad\n"


def test_interrupt_names_the_verb_or_the_render(capsys):
    assert run_command(raising(KeyboardInterrupt()), [], "train") == 130
    assert capsys.readouterr().err == "gsrender: interrupted during 'gsrender train'\n"
    assert run_command(raising(KeyboardInterrupt()), [], None) == 130
    assert capsys.readouterr().err == "gsrender: interrupted during start-up; nothing was rendered\n"


def test_a_signal_while_the_handlers_are_being_set_is_still_130(monkeypatch, capsys):
    """SIGTERM lands while install_startup_signals checks the handlers (the first one is live by
    then): the interrupt it raises there ends the command like any other, not with a traceback."""

    def signal_lands(sig):
        command.note_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    monkeypatch.setattr(command.signal, "getsignal", signal_lands)
    assert run_command(lambda argv: 0, [], None) == 130
    assert capsys.readouterr().err == "gsrender: interrupted during start-up; nothing was rendered\n"


def test_closed_stdout_is_141_and_silenced(monkeypatch, capsys):
    silenced = []
    monkeypatch.setattr(command, "quiet_stdout", lambda: silenced.append(True))
    assert run_command(raising(BrokenPipeError()), [], "info") == EXIT_BROKEN_PIPE == 141
    assert silenced == [True] and capsys.readouterr().err == ""


def test_out_of_memory_is_70(capsys):
    assert run_command(raising(MemoryError()), [], None) == 70
    assert capsys.readouterr().err == "gsrender: error: out of memory\n"


@pytest.mark.parametrize("verb, where", [("info", "'gsrender info'"), (None, "gsrender")])
def test_a_bug_is_one_line_and_the_traceback_only_with_debug(verb, where, capsys, caplog, monkeypatch):
    monkeypatch.delenv("GSRENDER_DEBUG", raising=False)
    caplog.set_level(logging.ERROR, logger="gsrender")
    assert run_command(raising(KeyError("subimages")), ["x.exr"], verb) == 70
    err = capsys.readouterr().err
    assert err.startswith(f"gsrender: error: internal error in {where}: KeyError")
    assert err.endswith("(re-run with --debug or GSRENDER_DEBUG=1 for the traceback)\n")
    assert err.count("\n") == 1 and not caplog.records
    assert run_command(raising(KeyError("subimages")), ["x.exr", "--debug"], verb) == 70
    assert caplog.records and caplog.records[-1].exc_info is not None
    caplog.clear()
    monkeypatch.setenv("GSRENDER_DEBUG", "1")
    assert run_command(raising(KeyError("subimages")), ["x.exr"], verb) == 70
    assert caplog.records and caplog.records[-1].exc_info is not None


def test_system_exit_passes_through():
    """argparse's exit 2 (and --help's 0) are already an exit code: not an internal error."""
    with pytest.raises(SystemExit):
        run_command(raising(SystemExit(2)), [], "info")


def test_a_signal_makes_any_exception_an_interruption_for_that_command_only(capsys):
    """A signal breaking out of a library (an import fails as ImportError) ends the command 130,
    not 70; the next command in the same process is judged on its own."""
    from gsrender.engine.command import note_signal

    def broken_by_a_signal(_argv):
        note_signal(signal.SIGTERM)
        raise ImportError("initialization failed")

    assert run_command(broken_by_a_signal, [], "info") == 130
    assert "interrupted during 'gsrender info'" in capsys.readouterr().err

    def plain_bug(_argv):
        raise ImportError("initialization failed")

    assert run_command(plain_bug, [], "info") == 70


def test_a_signal_inside_evaluated_code_still_ends_the_process_130(tmp_path):
    """CPython ends a `python -m` process by SIGINT once a plain KeyboardInterrupt has left any
    eval(), even when the program handled it; imports evaluate code (collections.namedtuple), so
    a SIGTERM during start-up must not raise the plain class."""
    (tmp_path / "signal_in_eval.py").write_text(
        "import os, signal\n"
        "from gsrender.engine.command import install_startup_signals, signal_received\n"
        "install_startup_signals()\n"
        "try:\n"
        "    eval('os.kill(os.getpid(), signal.SIGTERM) or sum(range(10**9))')\n"
        "except KeyboardInterrupt:\n"
        "    raise SystemExit(130 if signal_received() else 1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "signal_in_eval"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 130, proc.stderr
