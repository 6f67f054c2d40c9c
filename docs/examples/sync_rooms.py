"""The same router on the sync driver: one thread per connection."""

from sansws.drivers.sync import Connection, Router, Server, basic_auth, serve


def room(ws: Connection) -> None:
    for message in ws:
        ws.send(f"{ws.username}@{ws.path_params['room']}: {message}")


def item(ws: Connection) -> None:
    ws.send(f"item {ws.path_params['id'] + 1}")  # an int: {id:int}


router = Router({"/rooms/{room}": room, "/items/{id:int}": item})
auth = basic_auth("chat", credentials=("alice", "wonderland"))


def make_server(port: int = 8765) -> Server:
    return serve(router, "127.0.0.1", port, process_request=auth)


if __name__ == "__main__":
    with make_server() as server:
        server.serve_forever()
