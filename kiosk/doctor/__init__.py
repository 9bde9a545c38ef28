"""``kiosk doctor``: one line per part of the kiosk, ok, warning or failed, and what to do.

Each check is a small function in this package taking what it looks at (the configuration,
a path, a file-system root, a clock) so tests point it at folders and real servers; each
returns :class:`~contract.self_check.Finding`. :mod:`kiosk.doctor.run` runs them all in order.
None spends a PIN try, reads personal data or changes anything the kiosk uses.
"""
