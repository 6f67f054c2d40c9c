"""Echo client on the trio driver, for the Autobahn|Testsuite's
``fuzzingserver`` mode: reads the case count, runs every case (echoing each
message until the server closes), then asks for the reports.

    python conformance/trio_echo_client.py ws://127.0.0.1:9001 AGENT
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import trio
from sansws.drivers.trio import ConnectionClosed, WebSocketError, connect

# Autobahn (cases 9.x) sends messages of up to 16 MiB, in up to 65,536 fragments.
LIMITS = {"max_message_size": 2**24, "max_fragments": None}


async def run_case(url: str) -> None:
    async with connect(url, **LIMITS, ping_interval=None) as ws:
        async for message in ws:
            await ws.send(message)


async def main(base: str, agent: str, case_timeout: float) -> None:
    base = base.rstrip("/")
    async with connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        try:
            with trio.move_on_after(case_timeout) as scope:
                await run_case(f"{base}/runCase?case={case}&agent={agent}")
            if scope.cancelled_caught:
                print(f"case {case}: abandoned after {case_timeout} s", flush=True)
        except (WebSocketError, OSError) as exc:
            # Judging the case is the fuzzing server's job, not ours.
            if not isinstance(exc, ConnectionClosed):
                print(f"case {case}: {type(exc).__name__}: {exc}", flush=True)
    async with connect(f"{base}/updateReports?agent={agent}") as ws:
        with trio.move_on_after(120):
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("agent")
    parser.add_argument("--case-timeout", type=float, default=600.0)
    args = parser.parse_args()
    trio.run(main, args.base_url, args.agent, args.case_timeout)
    sys.exit(0)
