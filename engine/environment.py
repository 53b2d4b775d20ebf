"""Environment variables, read and validated in one place.

A value in the environment is input like an option: a typo there ("GSRENDER_DEBUG=false",
"WORLD_SIZE=two", a socket path with a newline) must be one line naming the variable, the
value and what it wants (exit 2), never a traceback, a hang or a value quietly taken to mean
something else. Unset or empty always means "the default".
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
MAX_SHOWN = 60  # characters of a bad value quoted in its error line


def shown(value: str) -> str:
    """A value as one line can show it: control characters escaped, at most MAX_SHOWN characters."""
    text = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def _refuse(name: str, value: str, wants: str) -> UsageError:
    return UsageError(None, f"environment variable {name}='{shown(value)}': {wants}; fix or unset it")


def env_flag(name: str) -> bool:
    """On/off: 1, true, yes, on / 0, false, no, off (any case); unset or empty is off."""
    value = os.environ.get(name, "")
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE or not word:
        return False
    raise _refuse(name, value, "want 1 or 0 (true/false, yes/no, on/off)")


def env_whole(name: str, default: int, least: int, most: int) -> int:
    """A whole number from ``least`` to ``most``; unset or empty gives ``default``."""
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    text = value.strip()
    if not (text.isascii() and text.lstrip("+-").isdigit()) or not least <= int(text) <= most:
        raise _refuse(name, value, f"want a whole number from {least} to {most}")
    return int(text)


def env_path(name: str, *, absolute: bool = True, max_bytes: int = 4096) -> Path | None:
    """A path (``~`` expanded); None when unset or empty. Refused: control characters (a newline
    splits every log line and shell command it reaches), bytes that are not UTF-8, and, where
    ``absolute``, a relative path (it would mean another place in another working folder)."""
    value = os.environ.get(name, "")
    if not value:
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _refuse(name, value, "the path is not valid UTF-8") from None
    if any(not ch.isprintable() and ch != " " for ch in value):
        raise _refuse(name, value, "a path may not hold control characters (a newline?)")
    if size > max_bytes:
        raise _refuse(name, value, f"a path of at most {max_bytes} bytes")
    path = Path(value).expanduser()
    if absolute and not path.is_absolute():
        raise _refuse(name, value, "want an absolute path")
    return path


def env_folder(name: str) -> Path | None:
    """A standard folder variable (XDG_RUNTIME_DIR, TMPDIR, XDG_CACHE_HOME): used only when it is
    an absolute path without control characters, else ignored as the XDG specification says."""
    try:
        return env_path(name)
    except UsageError:
        return None
