"""Whether a local port is free: the one test the supervisor (the hubs' ports) and the spawner
(a user server's) both use."""

import socket


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:`port` now, as the proxy and Jupyter servers bind
    (with SO_REUSEADDR): false while any process listens there."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
