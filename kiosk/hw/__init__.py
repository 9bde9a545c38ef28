"""Hardware behind small interfaces: status lights, buzzer, staff button.

- :mod:`kiosk.hw.signals`: what the flow asks for (``LightSignal``, ``Sound``), by meaning.
- :mod:`kiosk.hw.patterns`: what each looks and sounds like (pure tables).
- :mod:`kiosk.hw.reminder`: when a card left on the reader is called out (pure).
- :mod:`kiosk.hw.config`: ``[gpio]`` and ``[card_left]`` settings.
- :mod:`kiosk.hw.devices`: ``StatusLights``, ``Buzzer``, ``StaffButton`` on gpiozero.
- :mod:`kiosk.hw.backend`: ``build_hardware``, the one place that picks lgpio or mock pins.
- :mod:`kiosk.hw.cli`: ``kiosk hw test``, the maintainer's self-test.

Nothing is imported here, so the pure flow can use ``kiosk.hw.signals`` without gpiozero.
"""
