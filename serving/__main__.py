"""`python -m serving`: the production server (serving/server.py)."""

from serving.server import main

main()
