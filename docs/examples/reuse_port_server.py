"""One of several server processes sharing a port: start it as many times
as there are CPUs (``python reuse_port_server.py 8765 &`` ...); the kernel
spreads new connections among them. SIGTERM shuts one down gracefully."""

import asyncio
import os
import signal
import sys

from sansws.drivers.asyncio import Connection, serve


async def handler(ws: Connection) -> None:
    await ws.send(f"served by process {os.getpid()}")
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, reuse_port=True) as server:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.shutdown)
        print(f"process {os.getpid()} serving on port {server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
