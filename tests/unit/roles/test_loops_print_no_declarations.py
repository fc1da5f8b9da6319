"""At -vvv ansible prints every loop item in full, and no_log of a module cannot mask it: a role that loops over
tunnel declarations prints their proxy passwords (the secrets audit of the tunnels scenario found exactly that).
The roles loop over tunnel names instead."""
from __future__ import annotations

import pathlib

import yaml

ROLES = pathlib.Path(__file__).resolve().parents[3] / "roles"
DECLARATIONS = ("tunnel_client_tunnels",)
# What a loop may make of them: their names, or the inventory hosts they log in to.
TO_NAMES = ("map(attribute='name')", "netreach.tunnels.tunnel_inventory_hops(")


def tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from tasks(node.get(key))


def test_no_task_loops_over_whole_tunnel_declarations():
    offenders = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            loop = str(task.get("loop", ""))
            if any(name in loop for name in DECLARATIONS) and not any(to in loop for to in TO_NAMES):
                offenders.append(f"{path.relative_to(ROLES)}: {task.get('name')}")
    assert not offenders, "loops that print whole declarations at -vvv:\n" + "\n".join(offenders)
    assert list(ROLES.glob("*/tasks/*.yml")), "no role task files found"
