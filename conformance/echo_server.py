"""Echo server for the Autobahn|Testsuite's ``fuzzingclient`` mode (a server
under test), on any driver:

    python conformance/echo_server.py --driver sync [--port 9001]

Echoes every message, accepts messages up to 16 MiB as the suite requires,
and prints ``READY <port>`` once listening on 127.0.0.1. ``--driver NAME``
other than ``sync`` runs ``conformance/NAME_echo_server.py`` with the same
options, so each driver keeps its own echo server next to this one.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import runpy
import sys

from sansws.drivers.sync import Connection, serve

# Autobahn (cases 9.x) sends messages of up to 16 MiB, in up to 65,536 fragments.
LIMITS = {"max_message_size": 2**24, "max_fragments": None}


def serve_sync(port: int) -> None:
    def echo(ws: Connection) -> None:
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", port, **LIMITS, max_queue=64) as server:
        print("READY", server.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--driver", default="sync")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    if args.driver == "sync":
        serve_sync(args.port)
        return
    script = pathlib.Path(__file__).with_name(f"{args.driver}_echo_server.py")
    sys.argv = [str(script), "--port", str(args.port)]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
