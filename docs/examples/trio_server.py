"""An echo server on the trio driver, with a health check; SIGTERM shuts it
down (every client gets a 1001 Close frame), Ctrl+C stops it at once."""

import signal

import trio
from sansws.drivers.trio import Connection, Request, Response, Server, serve


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


async def health_check(ws: Connection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return Response(200, body=b"OK\n")
    return None  # go on with the WebSocket handshake


async def shutdown_on_sigterm(server: Server) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            server.shutdown()
            return


async def main(port: int = 8765) -> None:
    async with serve(echo, "127.0.0.1", port, process_request=health_check) as server:
        print(f"serving on port {server.port}", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shutdown_on_sigterm, server)
            await server.serve_forever()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
