"""The protective headers on every dashboard answer."""

from __future__ import annotations


def test_pages_carry_protective_headers(clinic, staff):
    answer = staff.get("/")
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert '<html lang="ja">' in answer.text
