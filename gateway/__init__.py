"""Case exchange gateway: moves criminal-case records between justice agencies.

The data's path reads in one direction:
inbound adapter -> map -> validate -> route -> store -> outbound adapter.
"""

__version__ = "0.1.0"
