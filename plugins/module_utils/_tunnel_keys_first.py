# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: ssh_tunnels' keys_first. Not a public API.
"""The first call of a fleet run on a client: the tunnels' keys made (the only change it makes), and the whole
declaration planned but never carried out, so the controller learns whether the full call would change anything
beyond the keys (pending) and which host keys each tunnel pins now, to compare them with the servers' own host
keys once the servers' play has gathered them. A settled client then needs no second tunnel call at all.

The declaration comes without the host keys pinned from the servers' facts (the servers' play has not run yet):
each tunnel is planned with the known_hosts it pins now, and the controller compares those lines instead.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_apply import tunnel_target
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_many import SharedPlan, plan_keys, plan_tunnels
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_metrics_plan import plan_metrics


def pinned_now(plan: SharedPlan, name: str) -> list[str]:
    """The known_hosts lines tunnel NAME pins on this host now ([] before its first run)."""
    text = plan.read(tunnel_target(name, "known_hosts"))
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def plan_pending(plan: SharedPlan, items: list, requests: list, exclusive: bool, metrics_dir: str | None,
                 metrics_interval: int, pinned: dict) -> bool:
    """Whether the full ssh_tunnels call on ITEMS (REQUESTS parsed) would change anything but the keys, each
    tunnel's known_hosts taken as PINNED (name -> lines). PLAN is only planned, never committed."""
    as_pinned = [request if isinstance(request, str) else
                 dataclasses.replace(request, known_hosts=tuple(pinned[request.name])) for request in requests]
    key_steps: list = []
    plan_tunnels(plan, items, as_pinned, exclusive, key_steps=key_steps)
    plan_metrics(plan, metrics_dir, metrics_interval)
    keys = {id(step) for step in key_steps}
    return any(step.changed for step in plan.steps if id(step) not in keys)


def keys_first(module, items: list, requests: list, exclusive: bool, metrics_dir: str | None,
               metrics_interval: int, secrets: list) -> dict:
    """The module's result: the keys of the declared tunnels made (or reused), `pending` and `pinned` beside
    them. The whole declaration is planned before anything is made: a declaration the full call would refuse
    (a port bound twice, a link where a unit belongs) fails here and changes nothing."""
    tunnels = [request for request in requests if not isinstance(request, str)]
    keys = SharedPlan(module, secrets=secrets)
    report = plan_keys(keys, [tunnel.identity for tunnel in tunnels])
    pinned = {tunnel.name: pinned_now(keys, tunnel.name) for tunnel in tunnels}
    pending = plan_pending(SharedPlan(module, secrets=secrets), items, requests, exclusive, metrics_dir,
                           metrics_interval, pinned)
    result = keys.commit()
    return dict(tunnels=report(), pending=pending, pinned=pinned, **result)
