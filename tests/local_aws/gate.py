"""A gate the echo fixture function waits at, so a test decides when the function returns."""

import threading

ECHO_GATE = threading.Event()
ECHO_GATE.set()
