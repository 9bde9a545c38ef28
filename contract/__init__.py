"""What the kiosk and the clinic server agree on, and nothing else.

The two programs talk over HTTPS and share no code but this package:

- :mod:`contract.errors`: the root of the one exception tree (``OnshiError``) and the errors
  both sides raise for shared formats;
- :mod:`contract.api`: the API's paths, its error body, which statuses are temporary and how
  long ``Retry-After`` asks a client to wait;
- :mod:`contract.challenge`: the message a card signs to answer a challenge;
- :mod:`contract.device_signing`: how a kiosk signs a request with its device key, and how the
  server checks it;
- :mod:`contract.outbox_record`: an outbox record, a batch and the server's acknowledgement;
- :mod:`contract.sealing`: sealing a record's body to the server's outbox key (HPKE).

It imports no hardware library, web framework or database driver: the kiosk depends on it,
the clinic server depends on it, and neither depends on the other (``make test`` checks).
"""
