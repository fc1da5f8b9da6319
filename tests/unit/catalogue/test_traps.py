"""The symbolic-link traps are well formed: every row names a module of the collection and options it has (as
ansible-doc documents them, doc fragments included)."""
from __future__ import annotations

import functools
import json
import subprocess

import pytest

from .traps import ROWS


@functools.cache
def options(module: str) -> set[str]:
    out = subprocess.run(["ansible-doc", "-j", f"netreach.tunnels.{module}"], check=True, capture_output=True,
                         text=True).stdout
    return set(json.loads(out)[f"netreach.tunnels.{module}"]["doc"]["options"])


@pytest.mark.parametrize(("module", "args", "field"), ROWS)
def test_a_trap_row_names_an_option_of_its_module(module, args, field):
    missing = {*args, field} - options(module)
    assert not missing, f"{module} has no option {sorted(missing)}"
