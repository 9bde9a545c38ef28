"""The patient-facing touch screen: layouts, message catalogues, drawing and voice.

* :mod:`kiosk.ui.view` describes each screen once; :mod:`kiosk.ui.arrange` lays it out for
  the 800x480 or the 720x1280 panel; :mod:`kiosk.ui.render` draws it.
* :mod:`kiosk.ui.display` is the :class:`~kiosk.flow.screens.PatientDisplay` (pygame-ce).
* :mod:`kiosk.ui.voice` renders and plays the spoken guidance; ``kiosk voice build``.
"""

import os

# pygame prints a banner on import; the kiosk's journal has no use for it
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
