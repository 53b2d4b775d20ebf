"""Every environment value gsrender reads is validated: one line naming the variable, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gsrender.engine.backends.tensorrt.cache import CACHE_ENV, default_cache_dir
from gsrender.engine.environment import env_flag, env_path, env_whole
from gsrender.engine.errors import UsageError
from gsrender.ofx_bridge.protocol import default_socket_path
from tests.conftest import assert_one_line


@pytest.mark.parametrize(
    "value, expected", [("", False), ("0", False), ("1", True), (" Yes ", True), ("off", False)]
)
def test_flags_take_the_usual_words(monkeypatch, value, expected):
    monkeypatch.setenv("GSRENDER_DEBUG", value)
    assert env_flag("GSRENDER_DEBUG") is expected


@pytest.mark.parametrize("value", ["false!", "2", "debug", "1 0"])
def test_other_flag_values_are_refused(monkeypatch, value):
    monkeypatch.setenv("GSRENDER_DEBUG", value)
    with pytest.raises(UsageError, match="GSRENDER_DEBUG=.*want 1 or 0"):
        env_flag("GSRENDER_DEBUG")


@pytest.mark.parametrize("value", ["two", "1.5", "-1", "inf", "0x2", "99999999999"])
def test_whole_numbers_are_checked(monkeypatch, value):
    monkeypatch.setenv("WORLD_SIZE", value)
    with pytest.raises(UsageError, match="WORLD_SIZE=.*whole number from 1 to 65536"):
        env_whole("WORLD_SIZE", 1, 1, 65536)


@pytest.mark.parametrize(
    "value, words",
    [
        ("relative/w.sock", "absolute path"),
        ("/tmp/a\nb/w.sock", "control characters"),
        ("/tmp/" + "x" * 200 + "/w.sock", "at most 107 bytes"),
        ("/tmp/\udce9/w.sock", "not valid UTF-8"),
    ],
)
def test_the_worker_socket_path_is_checked_like_the_plugin_checks_it(monkeypatch, value, words):
    monkeypatch.setenv("GSRENDER_SOCKET", value)
    with pytest.raises(UsageError, match=words):
        default_socket_path()


def test_relative_runtime_and_temp_folders_are_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("GSRENDER_SOCKET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rt").mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", "rt")
    monkeypatch.setenv("TMPDIR", "rt")
    import os

    assert default_socket_path() == Path(f"/tmp/gsrender-{os.getuid()}/worker.sock")


def test_engine_cache_folder_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, "engines\n")
    with pytest.raises(UsageError, match="GSRENDER_ENGINE_CACHE"):
        default_cache_dir()
    monkeypatch.setenv(CACHE_ENV, "relative/engines")
    with pytest.raises(UsageError, match="absolute path"):
        default_cache_dir()
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG specification says
    assert default_cache_dir() == Path.home() / ".cache" / "gsrender" / "engines"
    assert env_path(CACHE_ENV) is None


def _gsrender(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gsrender.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    "args, env, words",
    [
        (["info", "nothing.png"], {"GSRENDER_DEBUG": "false!"}, "GSRENDER_DEBUG"),
        (["serve", "--idle-timeout", "1"], {"GSRENDER_SOCKET": "w.sock"}, "GSRENDER_SOCKET='w.sock'"),
        (
            ["serve", "--idle-timeout", "1"],
            {"GSRENDER_SOCKET": "/tmp/gsk\n/w.sock"},
            "GSRENDER_SOCKET='/tmp/gsk\\n",
        ),
    ],
)
def test_commands_refuse_bad_environment_values_in_one_line(tmp_path, args, env, words):
    proc = _gsrender(*args, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert_one_line(proc.stderr, words)
    assert not (Path.cwd() / "w.sock").exists()


def test_training_ranks_are_checked(monkeypatch):
    pytest.importorskip("torch")
    from gsrender.training.train import Dist

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(UsageError, match="RANK='2'.*from 0 to 1"):
        Dist()
    monkeypatch.setenv("RANK", "1")
    assert Dist().rank == 1
