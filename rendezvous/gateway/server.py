"""The server that runs the gateway's app until SIGTERM/SIGINT.

Server: uvicorn with uvloop + httptools. Measured here on one Starlette route
decoding a 30-feature FP32 request (sequential keep-alive requests, p50 / p99,
then 8 concurrent connections): uvicorn uvloop+httptools 206-395 / 349-643 us,
~3,000-5,900 req/s; granian (uvloop) 218-619 / 428-2,012 us, ~3,400 req/s;
uvicorn asyncio+h11 482 / 803 us, 2,400 req/s; hypercorn 588 / 1,391 us,
2,700 req/s. uvicorn and granian tie within the noise; uvicorn runs in this
process, so the reply channel and the producer thread live beside the routes.
"""

from __future__ import annotations

import asyncio
import signal

from rendezvous.gateway.app import create_app
from rendezvous.gateway.service import Gateway
from rendezvous.process import watch_gc
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings


def run(settings: Settings, access_log: bool = False) -> None:
    """Serve the gateway until SIGTERM/SIGINT; the ready line carries the real URL."""
    import uvicorn

    config = settings.gateway
    watch_gc()
    gateway = Gateway.create(settings)
    server = uvicorn.Server(uvicorn.Config(
        create_app(gateway), host=config.host, port=config.port, loop="uvloop",
        http="httptools", lifespan="on", access_log=access_log, log_config=None))

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        while gateway.not_ready() and not serving.done():
            await asyncio.sleep(0.05)
        if not serving.done():
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            # port= is what supervisors read to find /metrics, as for every component
            announce_ready("gateway", f"http://{host}:{port} port={port} "
                                      f"reply_to={gateway.reply_to}")
        await serving

    import uvloop

    # uvicorn handles SIGTERM/SIGINT while it serves and raises the signal again once it
    # has drained; with these handlers that second one is a no-op (exit status 0, no
    # traceback), and a signal before serving starts still stops it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: server.handle_exit(signum, frame))
    uvloop.run(main())
