"""How every fake is served: a threaded WSGI server on a free port of 127.0.0.1, quiet, for the
duration of a ``with`` block. One way for all four, so tests, the demo and
``python -m bl832_assets.fakes`` start them alike: ``with fake.serve() as url``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class _QuietHandler(WSGIRequestHandler):
    """No access log: a test's output should show its failures, not every poll."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serving(app: WsgiApp) -> Iterator[str]:
    """Serve ``app`` for the block; yields ``http://127.0.0.1:<port>``."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
