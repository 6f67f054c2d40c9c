"""Drive a sansws ClientConnection over a plain blocking socket."""

import socket
import sys
import time

from sansws import Accepted, ClientConnection, Closed, Message, Rejected


def say_hello(url: str, host: str, port: int) -> None:
    conn = ClientConnection(url)  # queues the opening handshake request
    with socket.create_connection((host, port), timeout=10) as sock:
        events = []
        while True:
            events += conn.handle_timeout(time.monotonic())  # keepalive, timeouts
            for event in events:
                match event:
                    case Accepted():
                        conn.send_text("Hello!")
                    case Message(data=data):
                        print("received:", data)
                        conn.close()
                    case Closed() | Rejected():
                        print("ended:", event)
            sock.sendall(conn.data_to_send())
            if conn.should_close_transport:
                break
            deadline = conn.next_deadline()
            sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 1e-3))
            try:
                events = conn.receive_data(sock.recv(65536))  # b"" at end of stream
            except TimeoutError:
                events = []


if __name__ == "__main__":
    say_hello(sys.argv[1], sys.argv[2], int(sys.argv[3]))
