"""The url_userinfo filter: credentials in route and gateway URLs."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from ansible_collections.natsops.jetstream.plugins.filter.url_userinfo import url_userinfo


@pytest.mark.parametrize("password", ["plain", "p@ss/w:rd", "sp ace%25", "ünï"])
def test_credentials_survive_a_url_parser(password):
    url = f"nats-route://{url_userinfo('route user', password)}10.0.0.2:6222"
    parts = urlsplit(url)
    assert (unquote(parts.username), unquote(parts.password), parts.hostname) == ("route user", password, "10.0.0.2")


def test_no_user_no_credentials():
    assert url_userinfo("", "secret") == "" and url_userinfo(None, "secret") == ""
