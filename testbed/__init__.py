"""The testbed: the whole product on one machine, for the demo, the benchmarks and the tests.

A local clinic server with kiosks issued (:mod:`testbed.local_clinic`), the demo's world
(:mod:`testbed.environment`), what the patient saw (:mod:`testbed.screen_log`), a scripted
patient (:mod:`testbed.patient`) and the staff's hands (:mod:`testbed.staff`), the demo
itself (:mod:`testbed.demo`, :mod:`testbed.demo_window`, :mod:`testbed.card_demo`) and the
benchmarks that need a clinic server (:mod:`testbed.bench`).

The testbed uses the kiosk, the clinic server and their contract; none of them imports it.
Its commands reach ``kiosk`` and ``clinic-server`` through entry points.
"""
