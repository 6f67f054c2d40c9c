"""Echo server on the trio driver, for the Autobahn|Testsuite's
``fuzzingclient`` mode (run through ``conformance/echo_server.py --driver trio``).

    python conformance/trio_echo_server.py [--port 9001]

Accepts messages up to 16 MiB, as the suite requires; prints ``READY`` once
listening on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib

import trio
from sansws.drivers.trio import Connection, serve

# Autobahn (cases 9.x) sends messages of up to 16 MiB, in up to 65,536 fragments.
LIMITS = {"max_message_size": 2**24, "max_fragments": None}


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, **LIMITS) as server:
        print("READY", server.port, flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, args.port)
