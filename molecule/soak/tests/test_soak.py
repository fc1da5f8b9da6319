"""Fault soak of netreach.tunnels with real traffic on the lab's own networks (issue 8).

The short soak (the default, part of `make test`) and the long one (SOAK=1, molecule.yml passes it in) differ
only in counts and durations: kill rounds, outage length, gateway cycles. Every measured figure is printed, and
the last test prints them all as one `soak-figures:` JSON line, which bench/soak.py reads.

Probes and traffic run inside the containers (files/soaklab.py, to 127.0.0.1 only); the controller reaches the
containers with `docker exec`, and the gateway over SSH on corp, as a controller would. The gateway cycles run
in a thread from the first restart round on: soak-gw is none of the tunnels' hosts, and in parallel the short
soak fits in `make test`.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import statistics
import subprocess
import threading
import time
import types

import labtest
import pytest

LONG = os.environ.get("SOAK", "0") == "1"
# Rounds of kills: each kills the five RESTARTED tunnels at once, alternately from the bastion's side (their
# sshd sessions) and from the client's side (their ssh processes).
ROUNDS = 100 if LONG else 20
OUTAGE = 600 if LONG else 60
CYCLES = 100 if LONG else 20

NEWS = "200 netreach news ready"
# What each tunnel carries, as soaklab.py targets (PORT/KIND/EXPECT): -L forwards probed on the client, the -R
# forward on the bastion.
CLIENT_TARGETS = {
    "news": f"12346/banner/{NEWS}",
    "web": "12380/http/netreach soak page",
    "jump": f"12345/banner/{NEWS}",
    "socks": f"13128/socks/{NEWS}",
    "watch": f"12390/banner/{NEWS}",
}
BASTION_TARGETS = {"rev": "2222/banner/200 netreach soak client ready"}
RESTARTED = ["news", "web", "jump", "rev", "socks"]
TUNNELS = RESTARTED + ["watch"]
# The backoff of the tunnels (molecule.yml): restart_delay, restart_max_delay.
BACKOFF = {name: (1, 10 if name == "watch" else 2) for name in TUNNELS}
# The unit's RestartSec (_tunnel_render.RESTART_SEC): the least time between two starts besides the starter's wait.
RESTART_SEC = 0.001
TUNNEL_SESSIONS = "'^sshd(-session)?: tunnel'"
GW_PORTS = (8081, 8082, 8083)

FIGURES: dict = {}


def unit(tunnel: str) -> str:
    return f"netreach-tunnel@{tunnel}.service"


def docker_exec(short: str, command: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    completed = subprocess.run(["docker", "exec", labtest.container(short), "sh", "-c", command],
                               capture_output=True, text=True, timeout=timeout, check=False)
    if check and completed.returncode != 0:
        raise AssertionError(f"{short}: {command!r} failed ({completed.returncode}): {completed.stdout}{completed.stderr}")
    return completed


def journal(short: str, tunnel: str) -> str:
    return docker_exec(short, f"journalctl --no-pager -n 40 -u {unit(tunnel)}", check=False).stdout


def wait_for_traffic(since: float, timeout: float, tunnels: list[str]) -> dict[str, float | None]:
    """Seconds from SINCE until each of TUNNELS carried traffic again, probed concurrently on both ends."""
    probes = {}
    for short, targets in (("client", CLIENT_TARGETS), ("bastion", BASTION_TARGETS)):
        wanted = [targets[name] for name in tunnels if name in targets]
        if wanted:
            probes[short] = subprocess.Popen(
                ["docker", "exec", labtest.container(short), "python3", "/usr/local/bin/soaklab.py", "wait",
                 str(since), str(timeout), *wanted], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    by_port = {}
    for short, process in probes.items():
        out, err = process.communicate(timeout=timeout + 60)
        assert process.returncode == 0, f"{short}: soaklab.py wait failed: {err}"
        by_port.update(json.loads(out))
    targets = {**CLIENT_TARGETS, **BASTION_TARGETS}
    return {name: by_port[targets[name].split("/")[0]] for name in tunnels}


def assert_recovered(seconds: dict[str, float | None], what: str) -> None:
    failed = [name for name, value in seconds.items() if value is None]
    assert not failed, f"{what}: no traffic through {failed}; " + "".join(
        f"\n{unit(name)} logged:\n{journal('client', name)}" for name in failed)


def unit_property(tunnels: list[str], prop: str) -> dict[str, int]:
    out = docker_exec("client", " ; ".join(f"systemctl show -p {prop} --value {unit(name)}" for name in tunnels)).stdout
    return dict(zip(tunnels, (int(value) for value in out.split())))


def restart_counts(tunnels: list[str]) -> dict[str, int]:
    """Each tunnel's restarts as tunnel_info and the metrics count them: systemd's NRestarts (the starter restarted)
    and the starter's own count in its state file (ssh run again without a unit restart)."""
    systemd = unit_property(tunnels, "NRestarts")
    out = docker_exec("client", " ; ".join(
        f"sed -n 's/.*restarts=\\([0-9]*\\).*/\\1/p' /run/netreach-tunnel/{name}/state | grep . || echo 0"
        for name in tunnels)).stdout
    return {name: systemd[name] + int(value) for name, value in zip(tunnels, out.split())}


def ssh_pids(tunnels: list[str]) -> dict[str, int]:
    """The ssh each tunnel's starter (the unit's main process) runs as its child (0: none right now)."""
    out = docker_exec("client", " ; ".join(
        f"pgrep -o -P \"$(systemctl show -p MainPID --value {unit(name)})\" -x ssh || echo 0" for name in tunnels)).stdout
    return dict(zip(tunnels, (int(value) for value in out.split())))


def census(short: str) -> dict:
    """ssh/sshd processes, their fds and the TCP listeners of a host (docker's resolver port left out)."""
    document = json.loads(docker_exec(short, "python3 /usr/local/bin/soaklab.py census").stdout)
    document["listeners"] = [entry for entry in document["listeners"] if not entry.startswith("127.0.0.11:")]
    return document


def leak_view(document: dict) -> dict:
    """What must be the same after a soak as before: process counts and listeners."""
    return {"ssh": document["ssh"], "sshd": document["sshd"], "listeners": document["listeners"],
            "unit_processes": {name: value["processes"] for name, value in document["units"].items()}}


def fd_view(document: dict) -> dict:
    """What must not grow: file descriptors of ssh, sshd, sshd's listener and each tunnel unit."""
    return {"ssh_fds": document["ssh_fds"], "sshd_fds": document["sshd_fds"],
            "sshd_listener_fds": document.get("sshd_listener_fds", 0),
            **{f"{name}_fds": value["fds"] for name, value in document["units"].items()}}


def spread(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2)}


def most_restarts(seconds: float, delay: int, max_delay: int) -> int:
    """The most restarts (restart_counts: the starter's and systemd's) the backoff allows in SECONDS after a session
    ended, if every attempt failed at once and the helper never added its jitter. A restart is counted when the last
    attempt ended (the starter's own, before its wait) or RESTART_SEC after it (systemd's, of a starter that ended),
    then the helper waits before ssh starts: nothing the first time, then DELAY doubling up to
    MAX_DELAY (tunnel-start in plugins/module_utils/_tunnel_start.py: a start that fails in the starter itself, a
    refused connection, counts as one of these quick failures)."""
    failures, clock, restarts = 1, 0.0, 0
    while True:
        clock += RESTART_SEC
        if clock > seconds:
            return restarts
        restarts += 1
        clock += 0 if failures <= 1 else min(delay * 2 ** (failures - 2), max_delay)
        failures += 1


def test_the_backoff_bound_follows_the_helper():
    # The bound the outage is held to, worked by hand: restarts counted at 0.001, 0.002, 1.003, 3.004, 5.005,
    # 7.006 and 9.007 s for 1 s / 2 s; for 1 s / 30 s (the module's defaults) at 0.001, 0.002, 1.003, 3.004, 7.005,
    # 15.006, 31.007, 61.008 s, then every 30.001 s.
    assert most_restarts(10, 1, 2) == 7
    assert most_restarts(0.0005, 1, 2) == 0
    assert most_restarts(0.05, 1, 2) == 2
    assert most_restarts(600, 1, 30) == 25


# --- 1. forced restarts with traffic running -----------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline() -> dict:
    """The hosts' census with every tunnel up and no traffic, taken before anything is killed."""
    seconds = wait_for_traffic(time.time(), 60, TUNNELS)
    assert_recovered(seconds, "before the soak")
    time.sleep(2)
    return {short: census(short) for short in ("client", "bastion", "target")}


@pytest.fixture(scope="module")
def traffic(baseline):
    """Requests through every forward, in a loop on the client and on the bastion, while the tests run."""
    state = "/run/soak-traffic"
    processes = {}
    for short, targets in (("client", CLIENT_TARGETS), ("bastion", BASTION_TARGETS)):
        docker_exec(short, f"rm -f {state} {state}.stop")
        processes[short] = subprocess.Popen(
            ["docker", "exec", labtest.container(short), "python3", "/usr/local/bin/soaklab.py", "traffic", state,
             "7200", *targets.values()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def counts() -> dict:
        result = {}
        for short in processes:
            result.update(json.loads(docker_exec(short, f"cat {state}").stdout))
        return result

    def pause(paused: bool) -> None:
        """Hold the loops (no request in flight, so none holds a descriptor) or let them go on."""
        for short in processes:
            docker_exec(short, f"touch {state}.pause" if paused else f"rm -f {state}.pause")
        if paused:
            time.sleep(3)


    assert labtest.wait_until(lambda: docker_exec("client", f"test -s {state}", check=False).returncode == 0, 20)
    yield types.SimpleNamespace(counts=counts, pause=pause)
    for short, process in processes.items():
        docker_exec(short, f"touch {state}.stop")
        process.communicate(timeout=30)


def settled(baseline: dict, timeout: float = 60) -> tuple[dict, float | None]:
    """The hosts' census once their process counts and listeners are back to the baseline (or at TIMEOUT)."""
    latest = {}

    def same() -> bool:
        latest.update({short: census(short) for short in baseline})
        return all(leak_view(latest[short]) == leak_view(baseline[short]) for short in baseline)

    return latest, labtest.wait_until(same, timeout, 1)


def test_every_forced_restart_recovers_with_traffic_running(baseline, traffic, gateway_soak):
    # Kills from the bastion's side (the sessions) and the client's (the tunnels' ssh, which the starter runs again
    # itself), and every fourth round the starters themselves (the unit's main process: systemd's Restart= restarts
    # the unit, the outer net).
    restarts_before = restart_counts(RESTARTED)
    recovery: list[float] = []
    per_side: dict[str, list[float]] = {"server": [], "client": [], "starter": []}
    for number in range(ROUNDS):
        side = "server" if number % 2 == 0 else "starter" if number % 4 == 3 else "client"
        pids = ssh_pids(RESTARTED)
        assert all(pids.values()), f"round {number}: a tunnel has no running ssh: {pids}"
        since = time.time()
        if side == "server":
            killed = docker_exec("bastion", f"pkill -KILL -u tunnel -f {TUNNEL_SESSIONS}", check=False)
            assert killed.returncode == 0, f"round {number}: no tunnel session to kill on the bastion"
        elif side == "client":
            docker_exec("client", "kill -KILL " + " ".join(str(pid) for pid in pids.values()))
        else:
            starters = unit_property(RESTARTED, "MainPID")
            docker_exec("client", "kill -KILL " + " ".join(str(pid) for pid in starters.values()))
        seconds = wait_for_traffic(since, 120, RESTARTED)
        assert_recovered(seconds, f"round {number} ({side} side kill)")
        new_pids = ssh_pids(RESTARTED)
        assert all(new_pids[name] != pids[name] for name in RESTARTED), \
            f"round {number}: a tunnel answered without a new ssh: {pids} -> {new_pids}"
        recovery += seconds.values()
        per_side[side] += seconds.values()
    restarts = {name: count - restarts_before[name] for name, count in restart_counts(RESTARTED).items()}
    requests = traffic.counts()
    figures = {"rounds": ROUNDS, "restarts": len(recovery), "recovery_s": spread(recovery),
               "recovery_by_side_s": {side: spread(values) for side, values in per_side.items()},
               "unit_restarts": restarts, "requests": requests}
    FIGURES["restarts"] = figures
    print(f"restart soak: {len(recovery)} forced restarts in {ROUNDS} rounds, all recovered; "
          f"recovery s min/median/max {figures['recovery_s']['min']}/{figures['recovery_s']['median']}/"
          f"{figures['recovery_s']['max']}; by side {figures['recovery_by_side_s']}")
    print(f"restart soak: restarts {restarts} for {ROUNDS} kills each; requests through the forwards "
          f"meanwhile {requests}")
    # Every kill restarted its tunnel (its starter ran ssh again, or systemd the starter); more restarts are attempts
    # that failed and were retried (on a loaded machine, a jump host's banner exchange can outlast connect_timeout).
    assert all(count >= ROUNDS for count in restarts.values()), restarts
    for port, count in requests.items():
        assert count["ok"] >= ROUNDS, f"port {port}: only {count['ok']} requests went through during the soak"


def test_restarts_leak_no_process_fd_or_listener(baseline, traffic):
    counts_before = traffic.counts()
    time.sleep(3)
    assert traffic.counts() != counts_before, "the traffic loops stopped"
    traffic.pause(True)
    try:
        after, seconds = settled(baseline)
    finally:
        traffic.pause(False)
    figures = {short: {"before": {**leak_view(baseline[short]), **fd_view(baseline[short])},
                       "after": {**leak_view(after[short]), **fd_view(after[short])}} for short in baseline}
    FIGURES["restart_leaks"] = figures
    for short, views in figures.items():
        print(f"{short}: before {views['before']}")
        print(f"{short}: after  {views['after']}")
    assert seconds is not None, "process counts or listeners differ from before the soak after 60 s"
    print(f"every count was back to its baseline {seconds:.1f} s after the last round")
    for short in baseline:
        grown = {key: (value, fd_view(after[short]).get(key)) for key, value in fd_view(baseline[short]).items()
                 if fd_view(after[short]).get(key, 0) > value}
        assert not grown, f"{short}: file descriptors grew (before, after): {grown}"
    FIGURES["leaks_found"] = 0


# --- 2. the bastion down, then back ------------------------------------------------------------------------


def test_bastion_outage_recovers_by_itself_and_the_restart_rate_stays_bounded(baseline, traffic):
    # Down as a tunnel sees it: sshd stopped and every session gone, so each attempt is refused at once, the
    # fastest a unit can fail. (A killed container would do less: docker's resolver has no upstream in the lab,
    # so an attempt to a vanished name waits on the resolver for a minute.)
    # The bound holds from any state of the backoff: after quick failures its waits only start longer.
    assert_recovered(wait_for_traffic(time.time(), 60, TUNNELS), "before the outage")
    restarts_before = restart_counts(TUNNELS)
    started = time.time()
    docker_exec("bastion", "systemctl stop ssh && pkill -KILL -f '^sshd(-session)?: (tunnel|soakwatch)'")
    try:
        time.sleep(min(20, OUTAGE / 2))
        dark = wait_for_traffic(time.time(), 3, ["news", "watch"])
        assert dark == {"news": None, "watch": None}, f"control failed: traffic passed with the bastion down: {dark}"
        time.sleep(max(0.0, started + OUTAGE - time.time()))
        attempts = {name: count - restarts_before[name] for name, count in restart_counts(TUNNELS).items()}
        down_for = time.time() - started
    finally:
        docker_exec("bastion", "systemctl start ssh")
    back = time.time()
    seconds = wait_for_traffic(back, 120, TUNNELS)
    bounds = {name: most_restarts(down_for, *BACKOFF[name]) for name in TUNNELS}
    FIGURES["outage"] = {"down_s": round(down_for, 1), "attempts": attempts, "allowed": bounds,
                         "unthrottled": int(down_for / RESTART_SEC), "recovery_after_start_s": seconds}
    print(f"bastion down {down_for:.0f} s: restarts per tunnel during the outage {attempts}; the backoff allows "
          f"at most {bounds}; a unit restarting every {RESTART_SEC} s would have made {int(down_for / RESTART_SEC)}")
    print(f"traffic through every tunnel again, seconds after sshd started: {seconds}")
    assert_recovered(seconds, "after the bastion came back")
    for name in TUNNELS:
        assert 2 <= attempts[name] <= bounds[name], (
            f"{unit(name)} restarted {attempts[name]} times in a {down_for:.0f} s outage; the backoff allows "
            f"{bounds[name]} (and it must keep trying):\n{journal('client', name)}")
    traffic.pause(True)
    try:
        after, settle = settled(baseline)
    finally:
        traffic.pause(False)
    print(f"after the outage, back to the baseline in {settle} s: "
          + "; ".join(f"{short} {leak_view(after[short])}" for short in after))
    assert settle is not None, "ssh/sshd processes or listeners differ from the baseline after the outage"


# --- 3. gateway: apply / rollback / confirm cycles, in a thread beside 1. and 2. --------------------------------

MODULE = "netreach.tunnels.nat_rules"


@functools.cache
def gw_addr(segment: str) -> str:
    return labtest.container_ip(labtest.container("gw"), segment)


@functools.cache
def gw_interface(segment: str) -> str:
    return docker_exec("gw", f"ip -o -4 addr show to {gw_addr(segment)}/32").stdout.split()[1]


@functools.cache
def corp_subnet() -> str:
    out = subprocess.run(["docker", "network", "inspect", "--format", "{{ json .IPAM.Config }}",
                          labtest.network_name("corp")], check=True, capture_output=True, text=True).stdout
    return next(entry["Subnet"] for entry in json.loads(out) if ":" not in entry["Subnet"])


def declaration(port: int, rollback_timeout: int, lockout: bool = False) -> dict:
    """Port PORT of the gateway forwarded to target's web page; LOCKOUT also sends new SSH connections to the
    gateway to a closed port on target, so the controller cannot confirm."""
    target = labtest.container_ip(labtest.container("target"), "inside")
    forwards = [{"proto": "tcp", "port": port, "to": f"{target}:80", "in_interface": gw_interface("corp")}]
    if lockout:
        forwards.append({"proto": "tcp", "port": 22, "to": f"{target}:9", "in_interface": gw_interface("corp")})
    return {"masquerade": [{"out_interface": gw_interface("inside"), "source": corp_subnet()}],
            "port_forwards": forwards, "ip_forward": True, "rollback_timeout": rollback_timeout}


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory) -> dict:
    """An inventory that manages the gateway over SSH on corp, its host key pinned."""
    return labtest.ssh_inventory(tmp_path_factory.mktemp("ssh"), "gw", gw_addr("corp"), "the cycles")


def start_ansible(ssh_lab: dict, args: dict) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return subprocess.Popen(["ansible", ssh_lab["host"], "-i", ssh_lab["inventory"], "-m", MODULE, "-a", json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def ansible_result(ssh_lab: dict, process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=180)
    start = 0 if stdout.startswith("{") else stdout.find("\n{") + 1
    assert start > 0 or stdout.startswith("{"), f"ansible printed no JSON result: {stdout}{stderr}"
    document, _ = json.JSONDecoder().raw_decode(stdout[start:])
    return document["plays"][0]["tasks"][0]["hosts"][ssh_lab["host"]]


def gw_state() -> dict:
    """What the gateway runs and boots: our table as nft lists it, the boot rules, armed rollback timers."""
    return {
        "table": docker_exec("gw", "nft list table inet netreach").stdout,
        "boot": docker_exec("gw", "sha256sum /etc/netreach/nat/netreach.nft").stdout.split()[0],
        "timers": docker_exec("gw", "systemctl list-units --no-legend --plain 'netreach-nat-rollback-*'").stdout.strip(),
    }


def forward_answers(port: int) -> bool:
    page = docker_exec("client", f"curl -s -m 3 http://{gw_addr('corp')}:{port}/", check=False).stdout
    return "netreach soak page" in page


def gateway_cycles(ssh_lab: dict, record: dict) -> None:
    """CYCLES of apply / rollback / confirm on the gateway, every fifth with the controller killed mid-apply;
    each must end in the last confirmed state. Runs in a thread beside the tunnel soak: records, never raises."""
    try:
        confirmed = gw_state()
        assert not confirmed["timers"], f"a rollback timer is armed before the cycles: {confirmed['timers']}"
        confirmed_port = 8080
        assert forward_answers(confirmed_port), "the converged forward does not answer before the cycles"
        for number in range(CYCLES):
            kind = {2: "rolled back", 4: "killed mid-apply"}.get(number % 5, "confirm")
            if kind == "confirm":
                port = next(p for p in GW_PORTS[record["kinds"]["confirm"] % 3:] + GW_PORTS if p != confirmed_port)
                result = ansible_result(ssh_lab, start_ansible(ssh_lab, declaration(port, 20)))
                assert result.get("changed") and result.get("confirmed"), f"cycle {number}: {result}"
                state = gw_state()
                assert f"tcp dport {port} " in state["table"] and state["table"] == result["table"], \
                    f"cycle {number}: the kernel's table is not the one just confirmed:\n{state['table']}"
                confirmed, confirmed_port = state, port
            else:
                record["rollback_s"].append(unconfirmed_cycle(ssh_lab, number, kind, confirmed))
            record["kinds"][kind] += 1
            assert gw_state() == confirmed, f"cycle {number} ({kind}): the gateway is not in the confirmed state"
            assert forward_answers(confirmed_port), f"cycle {number}: the confirmed forward {confirmed_port} does not answer"
    except BaseException as exc:  # noqa: BLE001 - handed to the test that joins the thread
        record["error"] = exc


def unconfirmed_cycle(ssh_lab: dict, number: int, kind: str, confirmed: dict) -> float:
    """Apply a ruleset that cuts new SSH connections, so it cannot be confirmed, and, for "killed mid-apply",
    kill the controller and its connection once the ruleset is in the kernel. Seconds until the gateway ran the
    confirmed state again."""
    process = start_ansible(ssh_lab, declaration(GW_PORTS[(number // 5) % 3], 3, lockout=True))
    try:
        applied = labtest.wait_until(lambda: "tcp dport 22 " in docker_exec("gw", "nft list table inet netreach").stdout,
                                     60, 0.1)
        assert applied is not None, f"cycle {number}: the unconfirmed ruleset never reached the kernel"
        applied_at = time.monotonic()
        if kind == "killed mid-apply":
            os.killpg(process.pid, signal.SIGKILL)
            docker_exec("gw", "pkill -KILL -f '^sshd(-session)?: root'", check=False)
        restored = labtest.wait_until(lambda: gw_state() == confirmed, 30, 0.2)
        assert restored is not None, f"cycle {number} ({kind}): not back to the confirmed state: {gw_state()}"
        seconds = time.monotonic() - applied_at
        if kind == "rolled back":
            result = ansible_result(ssh_lab, process)
            assert result.get("failed") and result.get("rolled_back"), f"cycle {number}: {result}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    assert labtest.wait_until(ssh_lab["reachable"], 20) is not None, f"cycle {number}: no SSH after the rollback"
    return seconds


@pytest.fixture(scope="module")
def gateway_soak(ssh_lab):
    """The gateway cycles, started in a thread by the first test that asks; joined by the gateway test."""
    record = {"kinds": {"confirm": 0, "rolled back": 0, "killed mid-apply": 0}, "rollback_s": [], "error": None}
    thread = threading.Thread(target=gateway_cycles, args=(ssh_lab, record), daemon=True)
    record["started"] = time.monotonic()
    thread.start()
    record["thread"] = thread
    yield record
    thread.join(timeout=1800)


def test_gateway_cycles_always_end_in_the_confirmed_state(gateway_soak):
    gateway_soak["thread"].join(timeout=1800)
    assert not gateway_soak["thread"].is_alive(), "the gateway cycles did not finish within 30 minutes"
    kinds, rollback_s = gateway_soak["kinds"], gateway_soak["rollback_s"]
    FIGURES["gateway"] = {"cycles": sum(kinds.values()), "kinds": kinds,
                          "rollback_s": spread(rollback_s) if rollback_s else None,
                          "wall_s": round(time.monotonic() - gateway_soak["started"], 1)}
    print(f"gateway: {sum(kinds.values())} cycles {kinds}, each ending in the last confirmed state; unconfirmed "
          f"rulesets rolled back by the host after s (rollback_timeout 3 s) {FIGURES['gateway']['rollback_s']}")
    labtest.run_module(labtest.container("gw"), MODULE, declaration(8080, 20))
    if gateway_soak["error"] is not None:
        raise gateway_soak["error"]
    assert kinds == {"confirm": CYCLES - 2 * (CYCLES // 5), "rolled back": CYCLES // 5, "killed mid-apply": CYCLES // 5}


def test_summary_of_every_figure():
    assert FIGURES, "no soak test recorded a figure"
    print("soak-figures: " + json.dumps({"long": LONG, **FIGURES}, sort_keys=True))
