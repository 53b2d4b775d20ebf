"""The `gsrender` command (gsrender.cli): verbs reach their mains, every verb ends through the one
error wrapper, a verb that cannot load says which extra to install, anything else renders."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gsrender.cli import VERBS, main
from gsrender.cli.verbs import Verb
from gsrender.engine.errors import UsageError
from tests.conftest import assert_one_line, make_plate, write_plate

GSRENDER = [sys.executable, "-m", "gsrender.cli"]

# verb -> (module its main lives in, what that module needs beyond the base install to load;
# build-engine's command loads without TensorRT: it lists the cache and says what a build lacks)
MODULES = {
    "info": ("gsrender.cli.info", None),
    "doctor": ("gsrender.cli.doctor", None),
    "build-engine": ("gsrender.cli.build_engine", None),
    "job": ("gsrender.cli.job", None),
    "serve": ("gsrender.cli.serve", None),
    "train": ("gsrender.cli.train", "torch"),
    "evaluate": ("gsrender.cli.evaluate", "torch"),
    "export": ("gsrender.cli.export", "torch"),
}


def _loadable(verb: str) -> bool:
    module, needs = MODULES[verb]
    if needs and importlib.util.find_spec(needs) is None:
        return False
    try:
        VERBS[verb].load()
    except ImportError:
        return False
    return True


def test_the_verbs_and_their_help_lines_are_those_of_gsrender_help(capsys):
    assert list(VERBS) == list(MODULES)
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    for verb, spec in VERBS.items():
        assert f"'gsrender {verb}': {spec.help}" in text
    assert "exit codes:" in text


@pytest.mark.parametrize("verb", sorted(MODULES))
def test_each_verb_loads_the_main_of_its_module(verb):
    if not _loadable(verb):
        pytest.skip(f"'gsrender {verb}' cannot load here")
    loaded = VERBS[verb].load()
    assert loaded.__module__ == MODULES[verb][0] and loaded.__name__ == "main"


def test_a_verb_gets_the_arguments_after_its_name(monkeypatch):
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    monkeypatch.setitem(VERBS, "info", Verb(lambda: fake_main, VERBS["info"].help))
    assert main(["info", "a.exr", "--layer", "x"]) == 7
    assert seen == [["a.exr", "--layer", "x"]]


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, capsys):
    def no_torch():
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setitem(VERBS, "train", Verb(no_torch, VERBS["train"].help, "train"))
    assert main(["train", "--config", "x.toml"]) == 2
    line = assert_one_line(capsys.readouterr().err)
    assert line == (
        "gsrender: error: 'gsrender train' is unavailable here (No module named 'torch'): "
        "pip install 'gsrender[train]'"
    )
    monkeypatch.setitem(VERBS, "serve", Verb(no_torch, VERBS["serve"].help))
    assert main(["serve"]) == 2
    line = assert_one_line(capsys.readouterr().err)
    assert line == "gsrender: error: 'gsrender serve' is unavailable here (No module named 'torch')"


def test_build_engine_is_the_tensorrt_build_cli(capsys, tmp_path, monkeypatch):
    """`gsrender build-engine` runs gsrender.cli.build_engine, which loads without
    TensorRT: it lists the engine cache anywhere, and a build without TensorRT is one line, exit 5."""
    assert VERBS["build-engine"].load().__module__ == MODULES["build-engine"][0]
    assert main(["build-engine", "--list", "--cache", str(tmp_path)]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    if importlib.util.find_spec("tensorrt") is None:
        assert main(["build-engine", "--cache", str(tmp_path)]) == 5
        err = capsys.readouterr().err
        assert err.startswith("gsrender build-engine: error: TensorRT is not installed")
        assert err.count("\n") == 1


@pytest.mark.parametrize("verb", sorted(MODULES))
def test_every_verb_ends_through_the_one_wrapper(verb, monkeypatch, capsys):
    """Each verb's main parses its options first; make that raise, and the verb's main must end as
    every verb does: an error line and its code, the interrupt line and 130."""
    if not _loadable(verb):
        pytest.skip(f"'gsrender {verb}' cannot load here")
    verb_main = VERBS[verb].load()
    label = "gsrender build-engine" if verb == "build-engine" else "gsrender"

    def refuse(self, args=None, namespace=None):
        raise UsageError(None, "refused for the test")

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", refuse)
    assert verb_main([]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{label}: error: refused for the test"]

    def interrupt(self, args=None, namespace=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", interrupt)
    assert verb_main([]) == 130
    assert capsys.readouterr().err.splitlines() == [f"gsrender: interrupted during 'gsrender {verb}'"]


def test_anything_else_is_the_render(monkeypatch, capsys):
    def interrupt(self, args=None, namespace=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", interrupt)
    assert main(["plate.####.exr"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "gsrender: interrupted during start-up; nothing was rendered"
    ]


def test_doctor_via_the_cli_verb(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["doctor", "--cache", str(tmp_path)]) == 0
    assert "auto picks" in capsys.readouterr().out


def test_unexpected_exception_in_a_tool_verb_is_one_line(tmp_path, capsys, monkeypatch):
    """Fault injection: the verb's own code raises what a bug would."""
    from gsrender.cli import info

    def broken(path, *args):
        raise KeyError("subimages")

    monkeypatch.setattr(info, "describe", broken)
    assert main(["info", str(tmp_path / "x.exr")]) == 70
    assert_one_line(capsys.readouterr().err, "internal error in 'gsrender info'", "KeyError", "--debug")


def test_closed_stdout_ends_quietly(tmp_path):
    src = write_plate(tmp_path / "p.png", make_plate())
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` after its line: every write now fails with EPIPE
    try:
        proc = subprocess.run(
            [*GSRENDER, "info", str(src)], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert proc.stderr == "" and proc.returncode == 128 + signal.SIGPIPE


RENDER_ONLY = """
import sys
from gsrender.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
upper = ("gsrender.training", "gsrender.export", "gsrender.ofx_bridge")
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx") or m.startswith(upper))
print(bad, file=sys.stderr)
sys.exit(1 if bad else 0)
"""


def test_rendering_never_loads_training_or_export_code():
    """Verbs are imported only when named: the render (here its --help) loads none of the upper layers."""
    proc = subprocess.run([sys.executable, "-c", RENDER_ONLY], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
