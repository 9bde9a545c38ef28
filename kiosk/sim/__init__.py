"""The simulation the tests and the demo stand on: a virtual My Number card and its world.

- :mod:`kiosk.sim.pki`: a simulated JPKI user-authentication CA, its certificates and CRL;
- :mod:`kiosk.sim.profile`: one card as a TOML file (kind, PIN and counters, keys, timing);
- :mod:`kiosk.sim.card`: the card itself, answering APDUs like the JPKI token (docs/card.md);
- :mod:`kiosk.sim.vpcd`: puts a card on the real PC/SC stack through vsmartcard's vpcd;
- :mod:`kiosk.sim.population`: cards and insured-person records covering every outcome;
- :mod:`kiosk.sim.cli`: ``kiosk sim population`` and ``kiosk sim card``.

It shares no code with :mod:`kiosk.card`, so a misreading of the card cannot hide in both.
File formats: ``kiosk/sim/FORMATS.md``.
"""
