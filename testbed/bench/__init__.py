"""Benchmarks that need the whole product: ``kiosk bench transaction``, ``kiosk bench outbox``
and ``clinic-server bench``. Each prints figures; none is a timed test.
"""
