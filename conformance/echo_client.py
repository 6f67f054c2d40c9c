"""Echo client for the Autobahn|Testsuite's ``fuzzingserver`` mode (a client
under test), on any driver:

    python conformance/echo_client.py --driver sync ws://127.0.0.1:9001 AGENT

Reads the case count, runs every case (echoing each message until the server
closes), then asks for the reports. ``--driver NAME`` other than ``sync``
runs ``conformance/NAME_echo_client.py`` with the same arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import runpy
import sys

from sansws.drivers.sync import ConnectionClosed, WebSocketError, connect

# Autobahn (cases 9.x) sends messages of up to 16 MiB, in up to 65,536 fragments.
LIMITS = {"max_message_size": 2**24, "max_fragments": None}


def run_sync(base: str, agent: str) -> None:
    base = base.rstrip("/")
    with connect(f"{base}/getCaseCount") as ws:
        count = int(ws.recv(timeout=60))
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        try:
            url = f"{base}/runCase?case={case}&agent={agent}"
            with connect(url, **LIMITS, ping_interval=None, max_queue=64) as ws:
                for message in ws:
                    ws.send(message)
        except (WebSocketError, OSError) as exc:
            # Judging the case is the fuzzing server's job, not ours.
            if not isinstance(exc, ConnectionClosed):
                print(f"case {case}: {type(exc).__name__}: {exc}", flush=True)
    with (
        connect(f"{base}/updateReports?agent={agent}") as ws,
        contextlib.suppress(ConnectionClosed, TimeoutError),
    ):
        ws.recv(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--driver", default="sync")
    parser.add_argument("base_url")
    parser.add_argument("agent")
    args = parser.parse_args()
    if args.driver == "sync":
        run_sync(args.base_url, args.agent)
        return
    script = pathlib.Path(__file__).with_name(f"{args.driver}_echo_client.py")
    sys.argv = [str(script), args.base_url, args.agent]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
