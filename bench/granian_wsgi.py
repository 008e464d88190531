"""Granian's WSGI interface around the same app, for `make bench-serve` to compare with the production server's
RSGI front (serving/rsgi.py): here the app reads its body from one of 32 blocking threads per worker.

    python -m bench.granian_wsgi   (same settings and environment as `python -m serving` otherwise)
"""

from granian.constants import Interfaces

from serving.server import main

if __name__ == "__main__":
    main(target="serving:create_app", interface=Interfaces.WSGI, blocking_threads=32)
