"""The webhooks floor: events and their signatures, sending them, receiving them, and the log of
what arrived.

Pure: ``signing`` and ``events/`` (exact wire bytes; no network). I/O: ``sender`` (and its sent
log), ``store`` (the delivery log), ``serving`` (an ASGI app on uvicorn in a thread) and the
receiver.
"""
