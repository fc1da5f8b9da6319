"""The bad-input catalogue: every case must fail with an error that names the offending field.

Table-driven across the collection's modules and the tunnel_server role; each row is (module, parameters, field
the error must name). An empty value where the module has a default (proto, forward_policy, a masquerade
source) is the default, not bad input.
The parsers run before anything touches a host (decide-then-write), so a failing parse changes nothing; the
badinput Molecule scenario runs every row through ansible against real hosts and checks that nothing changed.
"""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._nat import NatError
from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import ProxyError
from ansible_collections.netreach.tunnels.plugins.module_utils._session import SessionError
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError

from .cases import CASES, run_case


@pytest.mark.parametrize(("module", "params", "field"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_fails_naming_the_field(module, params, field):
    with pytest.raises((TunnelError, NatError, ProxyError, SessionError)) as info:
        run_case(module, params)
    named = info.value.field
    # The error may name the exact part of the field (local_forwards[0].host_port for local_forwards[0]).
    assert named == field or named.startswith((f"{field}.", f"{field}[")), \
        f"{module}: error names {named!r}, not {field!r}: {info.value}"
    assert str(info.value).startswith(f"{named}: ")
