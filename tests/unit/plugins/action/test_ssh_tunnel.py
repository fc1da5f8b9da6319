from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.action.ssh_tunnel import proxy_error


@pytest.mark.parametrize("proxy", [None, {"type": "http", "host": "p", "port": 8080}, "type=http host=p port=8080",
                                   '{"type": "http", "host": "p", "port": 8080}'])
def test_dicts_and_what_ansible_reads_as_a_dict_go_to_the_module(proxy):
    assert proxy_error(proxy) is None


@pytest.mark.parametrize("proxy", ["http://proxy:8080", "http://alice:S3cret-pw@proxy:8080", ["p"], 8080])
def test_anything_else_fails_naming_the_field_without_repeating_the_value(proxy):
    why = proxy_error(proxy)
    assert why.startswith("proxy: ") and "S3cret-pw" not in why and "proxy:8080" not in why
