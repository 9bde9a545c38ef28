"""``clinic-server bench --instances N``: N servers on one database, the kiosks spread over
them; every kiosk's verifications succeed whichever instance serves it."""

from __future__ import annotations

import json

from clinic.cli import main
from tests.support.clinic import fresh_database


def test_two_instances_on_one_database_serve_every_kiosk(backend, capsys):
    with fresh_database(backend) as database:
        base = ["--database", database] if database else []
        code = main(
            [*base, "bench", "--json", "--seconds", "3", "--kiosks", "2", "--instances", "2"]
        )
        assert code == 0
    [figures] = json.loads(capsys.readouterr().out)
    assert figures["instances"] == 2
    assert figures["kiosks"] == 2
    assert figures["per_second"] > 0
    assert figures["errors"] == 0
    # what each party spent per verification, read from /proc over the measured window
    cpu = figures["cpu"]
    assert cpu["server_ms"] > 0
    assert cpu["kiosks_ms"] > 0
    assert ("database_ms" in cpu) == (backend == "postgresql")
    assert 0 < cpu["machine_busy_pct"] <= 100
