"""The peers of `make bench-peers`: each serving framework's server script (run in its own environment), the
harness that installs, starts and stops them, and the reading, comparing and reporting of their answers."""
