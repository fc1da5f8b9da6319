"""The symbolic-link traps are well formed: every row names a module of the collection and a field it has."""
from __future__ import annotations

import os

import pytest

from .traps import ROWS

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "modules")


@pytest.mark.parametrize(("module", "args", "field"), ROWS)
def test_a_trap_row_names_an_option_of_its_module(module, args, field):
    with open(os.path.join(MODULES, f"{module}.py"), encoding="utf-8") as stream:
        source = stream.read()
    for option in [*args, field]:
        assert f"  {option}:" in source, f"{module} has no option {option}"
