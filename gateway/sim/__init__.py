"""Simulated agency systems for the demo and tests: police, procuratorate and court.

Each agency's behaviour (what it answers to which record) lives in `agencies.py`, one class per
system; how it talks (HTTP today) lives in its own module, so moving one agency to SOAP or SFTP
replaces only its transport.
"""
