"""A worker that dies in the middle of a render request, to test the plugin's restart.

    python crashy_worker.py MARKER once|always WORKER-COMMAND... --socket PATH

It answers pings like a healthy worker, then exits hard on the first render request
without replying. `once`: only the first start (no MARKER file yet) does that; later
starts exec the real worker command. `always`: every start does, so the plugin's single
restart fails too.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from gsrender.ofx_bridge.protocol import recv_message, send_message


def main() -> None:
    marker, mode, *rest = sys.argv[1:]
    sock_path = rest[rest.index("--socket") + 1]
    first = not Path(marker).exists()
    with open(marker, "a") as f:
        f.write("start\n")
    if mode == "once" and not first:
        worker = [a for a in rest if a not in ("--socket", sock_path)]
        os.execv(worker[0], [*worker, "--socket", sock_path])
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        while (msg := recv_message(conn)) is not None:
            if msg.get("op") != "ping":
                os._exit(3)  # "crash" with the render request unanswered
            send_message(conn, {"ok": True, "pid": os.getpid(), "version": msg.get("version")})
        conn.close()


if __name__ == "__main__":
    main()
