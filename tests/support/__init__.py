"""What the tests and benchmarks share, one module per job; fixtures stay in tests/conftest.py.

ports (a free loopback port), waiting (poll until a condition holds), records and config (the
records and configurations most tests start from), stores (test databases), serving (an ASGI app
on loopback), receiver (an agency's HTTP endpoint), api (a gateway served in this process),
nodes (gateway processes), chain (the exchange log's hash chain), drops (file drops), required
(skip or fail when a system package is missing), sshd, browser, certs, badinput.
"""
