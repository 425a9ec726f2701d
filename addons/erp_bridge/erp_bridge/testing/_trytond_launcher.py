"""Run one trytond web process for tests: ``python -m erp_bridge.testing._trytond_launcher``.

Same as the ``trytond`` command (werkzeug, threaded, trytond's own WSGI app), except:

- e-mail validation skips its DNS deliverability lookup: test machines have no DNS, and Tryton
  would reject every customer e-mail ("domain does not exist");
- it can listen on several sockets: its own port, plus a port shared by every process of a
  cluster (``SO_REUSEPORT``: the kernel spreads new connections over the processes);
- the databases named with ``-d`` are loaded before the sockets accept anything (a database not
  named is loaded by its first request, as in trytond).

Arguments: ``-c CONF [-d DB ...] --port P [--shared-port S]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading


def _socket(port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", dest="conf", required=True)
    parser.add_argument("-d", dest="databases", action="append", default=[])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shared-port", type=int, default=0)
    args = parser.parse_args(argv)

    os.environ["TRYTOND_CONFIG"] = args.conf
    level = int(os.environ.get("TRYTOND_LOGGING_LEVEL") or logging.ERROR)
    logging.basicConfig(level=level, format="%(process)s %(thread)s [%(asctime)s] %(levelname)s %(name)s %(message)s")
    logging.captureWarnings(True)

    import trytond.tools.email_ as email_
    from trytond import config

    _validate = email_.validate_email
    email_.validate_email = lambda email, check_deliverability=True: _validate(email, False)
    config.update_etc(args.conf)

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.wsgi import app
    from werkzeug.serving import make_server

    Pool.start()
    for name in args.databases:
        pool = Pool(name)
        with Transaction().start(name, 0, readonly=True):
            pool.init()

    sockets = [_socket(args.port, False)]
    if args.shared_port:
        sockets.append(_socket(args.shared_port, True))
    servers = [make_server("127.0.0.1", 0, app, threaded=True, fd=s.fileno()) for s in sockets]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
