"""``[server] urls``: several instances of the server, in order of preference."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from contract.errors import ConfigError
from kiosk.server_config import ServerConfig, parse_server


def server(text: str) -> ServerConfig:
    return parse_server(tomllib.loads(text), Path("/etc/onshi-kiosk"))


def test_urls_keep_their_order_and_url_is_the_first():
    parsed = server(
        'urls = ["https://a.example:8443/", "https://b.example:8443"]\nca = "server-ca.pem"'
    )
    assert parsed.urls == ("https://a.example:8443", "https://b.example:8443")
    assert parsed.url == "https://a.example:8443"


def test_one_url_is_a_list_of_one():
    parsed = server('url = "https://a.example:8443"\nca = "server-ca.pem"')
    assert parsed.urls == ("https://a.example:8443",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('url = "https://a"\nurls = ["https://b"]', "give url or urls, not both"),
        ("urls = []", "urls must be a list"),
        ('urls = "https://a"', "urls must be a list"),
        ('urls = ["https://a", "http://b"]', "urls must be https:// URLs"),
        ('urls = ["https://a", "https://a/"]', "lists https://a twice"),
        ("urls = [" + ", ".join(f'"https://h{i}"' for i in range(9)) + "]", "at most 8"),
        ('urls = ["https://a", 3]', "urls must be https:// URLs"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        server(text + '\nca = "server-ca.pem"')


def test_the_first_url_must_lead_the_list():
    with pytest.raises(ValueError, match="first of urls"):
        ServerConfig("https://a", Path("ca.pem"), urls=("https://b", "https://a"))
