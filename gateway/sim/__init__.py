"""Simulated legacy agency systems for the demo and tests: police, procuratorate, court, justice bureau.

What each agency answers lives apart from how it talks: `flow.py` (the demo's full case flow) and
`agencies.py` (the short flow of the compose deployment) know no network; `legacy.py` writes and
reads each agency's own format; `drop.py` (SFTP folders), `soap_agency.py` (spyne) and `http.py`
are the transports; `sshd.py` runs a throwaway OpenSSH server.
"""
