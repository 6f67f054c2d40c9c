"""An echo server on the asyncio driver, with a health check; SIGTERM or
Ctrl+C shuts it down (every client gets a 1001 Close frame)."""

import asyncio
import signal

from sansws.drivers.asyncio import Connection, Request, Response, serve


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


async def health_check(ws: Connection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return Response(200, body=b"OK\n")
    return None  # go on with the WebSocket handshake


async def main(port: int = 8765) -> None:
    async with serve(echo, "127.0.0.1", port, process_request=health_check) as server:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.shutdown)
        print(f"serving on port {server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
