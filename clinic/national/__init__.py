"""The national eligibility system, as the clinic server sees it.

- :mod:`clinic.national.interface`: what the eligibility check needs from the national
  system (``NationalConnector.lookup``), the answer it gets (``NationalAnswer``, the record
  vocabulary ``RECORD_FIELDS``) and the error a connector raises (``NationalUnavailable``);
- :mod:`clinic.national.simulated`: the simulated national system the project ships (the
  default connector) and the management of its data (``clinic-server national ...``).

A real, authorised connector is a deployment-specific class with the same ``lookup``; it is
chosen in ``clinic.server.build_connector``.
"""
