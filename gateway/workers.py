"""Several worker processes for one node: one listening socket, N forked processes serving it.

One Python process uses about one core (the interpreter lock); a node with `workers: N` uses N.
The parent prepares what must exist exactly once (data folder, signing key, schema), binds the
API port, then forks the workers; each runs the whole node (API, pipeline, dispatcher) on the
inherited socket, the kernel handing each new connection to whichever worker accepts first. The
store keeps them one node: one hash chain (each write group reads the chain head under the
database's write lock), one idempotency table (looked up in that same transaction), leases that
keep two workers from delivering the same record.

The parent only supervises: SIGTERM or SIGINT is passed on to every worker, a worker that dies is
started again, and when the parent itself is killed (kill -9) the kernel kills its workers
(PR_SET_PDEATHSIG), so no orphan keeps the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

from gateway.config import GatewayConfig

log = logging.getLogger("gateway.workers")

_PR_SET_PDEATHSIG = 1
RESTART_DELAY = 0.5  # seconds before a worker that died is started again (no tight loop on a bad start)


def worker_count(setting: int | str) -> int:
    """`auto`: the cores this process may run on; otherwise the number configured."""
    if setting == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return int(setting)


def listening_socket(host: str, port: int) -> socket.socket:
    """The node's API socket, bound and listening before any worker exists, inherited by all of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; exit if it is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _worker(config: GatewayConfig, sock: socket.socket, number: int, parent: int) -> None:
    """The forked child: the whole node on the shared socket until SIGTERM; never returns."""
    code = 1
    try:
        _die_with(parent)
        for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn installs its own; not the parent's
            signal.signal(sig, signal.SIG_DFL)
        from gateway.api.server import serve

        asyncio.run(serve(config, sock=sock, worker=number))
        code = 0
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        log.exception("worker %d failed", number)
    finally:
        logging.shutdown()
        os._exit(code)


def run(config: GatewayConfig, count: int) -> int:
    """Fork `count` workers and supervise them until SIGTERM/SIGINT; the node's exit status."""
    from gateway.api.server import tls_context
    from gateway.runtime import Gateway

    tls_context(config.gateway.api.tls)  # a bad certificate file stops the node here, named, not in each worker
    asyncio.run(Gateway(config).prepare())
    api = config.gateway.api
    sock = listening_socket(api.host, api.port)
    parent = os.getpid()
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def spawn(number: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _worker(config, sock, number, parent)
        children[pid] = number

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for n in range(1, count + 1):
        spawn(n)
    log.info("gateway node %s: %d worker processes on %s:%d", config.gateway.node, count, api.host, api.port)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        number = children.pop(pid, None)
        if number is None or stopping:
            continue
        log.warning("worker %d of node %s ended (status %d); starting it again", number, config.gateway.node,
                    os.waitstatus_to_exitcode(status))
        time.sleep(RESTART_DELAY)
        if not stopping:
            spawn(number)
    sock.close()
    return 0
