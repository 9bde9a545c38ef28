"""Support code the tests share, imported one way: ``from tests.support.X import ...``.

No test module imports another; fixtures live in ``conftest.py`` files, helpers here.
"""

from __future__ import annotations

from pathlib import Path

#: The project's root folder (where ``pyproject.toml`` is).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
