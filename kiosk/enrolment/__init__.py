"""Enrolment: giving one unit of the common image its identity, and saying when it has none.

- :mod:`kiosk.enrolment.checks`: reads an enrolment bundle (``contract.device_bundle``) and
  checks everything in it before anything is installed.
- :mod:`kiosk.enrolment.install`: installs a checked bundle into the identity folder in one
  rename, with owners and modes, keeping the identity it replaces (``--again``) as a backup.
- :mod:`kiosk.enrolment.unenrolled`: the maintainer's screen and light pattern of a unit with
  no identity, or a broken one; needs no ``kiosk.toml``.
- :mod:`kiosk.enrolment.cli`: ``kiosk enrol`` and ``kiosk unenrolled``.
"""
