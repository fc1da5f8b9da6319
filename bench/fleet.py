#!/usr/bin/env python3
"""Fleet benchmark: converge and idempotent rerun of playbooks/site.yml on 10, 30, 60 and 100 lab hosts, over SSH
as fleets run and over the docker connection, each against a fleet-wide `ansible all -m ping` floor measured on
the same hosts, with the same connection, in the same run; the tasks each host runs, and where the converge's
time goes.

Lab per size N and connection (a fresh one each time, so every converge starts from clean hosts): a bastion and
a target server on an internal "inside" network, the bastion also on "corp", and N - 2 clients on "corp" that are
tunnel_clients and proxy_clients. Every client declares two tunnels (the seed's `-L12345:localhost:119` to the
target through the bastion as jump host, and a SOCKS proxy on 127.0.0.1:3128 through the bastion) and a
client_proxy declaration. The containers start in batches of BATCH (each batch booted before the next starts:
a hundred systemd boots at once starve 2 cores). After the converge every client must read the target's banner
through its -L forward and fetch the target's page through its SOCKS proxy, or the benchmark fails.

Connections:
- ssh: OpenSSH as root with a key of the run's own, host keys pinned (a known_hosts file of the lab's keys,
  host_key_checking on), ControlMaster=auto with ControlPersist, pipelining: the settings a fleet runs with.
  The masters the converge opened serve the rerun and the pings alike; they are closed before the lab goes.
- docker: community.docker.docker (docker exec), pipelining on.

Every ansible run uses forks FORKS (10 unless set: on 2 cores more forks only queue on the CPU) and the linear
strategy. The ping floor is the median of 3 runs. Task durations come from the json callback (each task's start
to its last host result); "outside the tasks" is the rest of the run (ansible's start, inventory, play setup).
Tasks reaching a host: the rerun's tasks whose result on that host was neither skipped nor a controller-only
action (set_fact, assert, include_*), as the fleet scenario counts them.

Prints every figure and writes bench/results/fleet.json, docs/plots/fleet*.svg and a section of docs/benchmarks.md.

usage: bench/fleet.py  (FLEET_SIZES=10,30,60,100 FLEET_CONNECTIONS=ssh,docker FORKS=10 BATCH=10;
                        FLEET_KEEP=1 keeps the saved figures of the sizes/connections not measured;
                        bench/fleet.py --report: the section and plots again from the saved figures;
                        needs the lab image and the installed collection)
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _lab import create_network, save_results, start_container, wait_booted, write_section

SIZES = [int(size) for size in os.environ.get("FLEET_SIZES", "10,30,60,100").split(",")]
CONNECTIONS = os.environ.get("FLEET_CONNECTIONS", "ssh,docker").split(",")
FORKS = int(os.environ.get("FORKS", "10"))
BATCH = int(os.environ.get("BATCH", "10"))
LABEL = "bench-fleet"
CORP, INSIDE = "nrlab-bench-fleet-corp", "nrlab-bench-fleet-inside"
BASTION, TARGET = "bench-fleet-bastion", "bench-fleet-target"
BANNER = "200 fleet bench banner"
PAGE = "fleet bench target page"
RATIO_TARGET = 2.5
CONTROL_PERSIST = "300s"
# Task actions that run on the controller only: they never reach the host (as molecule/fleet/tests counts them).
CONTROLLER_ACTIONS = {f"{prefix}{action}" for prefix in ("", "ansible.builtin.") for action in (
    "set_fact", "assert", "include_tasks", "import_tasks", "include_role", "validate_argument_spec", "debug", "meta")}
TITLE = "Fleet: site.yml over SSH and docker (issue 17)"
# The same benchmark on main before this branch's cuts (2026-12-02, 10 hosts, load average 7 to 26): the
# "before" of the task counts, kept here because the run that measured it is gone with its code.
BEFORE = {"rerun_task_headers": 22, "client": 3, "server": 3, "ok_per_client": 13,
          "figures": "10 hosts over ssh: converge 34.4 s, rerun 30.3 s, ping floor 5.53 s, 5.48x (load 7 to 11); "
                     "over docker: converge 77.5 s, rerun 64.0 s, ping floor 13.32 s, 4.80x (load 12 to 26)"}
# The rerun's tasks by where they run: the module calls that may reach every client, the server play (its
# two hosts only, while every client waits: the play is linear).
CLIENT_CALLS = ("Create the key pair of every tunnel of this host", "Declare every tunnel of this host",
                "Write the proxy declaration to every layer of the client")
SERVER_PLAY = "Configure the tunnel servers for exactly the declared tunnels"


def clients(size: int) -> list[str]:
    return [f"bench-fleet-c{index:03d}" for index in range(1, size - 1)]


def hosts(size: int) -> list[str]:
    return [BASTION, TARGET, *clients(size)]


def sh(container: str, command: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(["docker", "exec", "-i", container, "sh", "-c", command], input=stdin,
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{container}: {command}: {done.stderr or done.stdout}")
    return done.stdout


def lab_containers() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=netreach.lab.scenario={LABEL}"],
                          capture_output=True, text=True, check=True).stdout.split()


def close_masters(workdir: pathlib.Path) -> None:
    """Close the SSH control masters of the last lab (they would wait ControlPersist for hosts that are gone)."""
    for socket in (workdir / "cp").glob("*"):
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "lab"], capture_output=True, timeout=30)


def stop(workdir: pathlib.Path | None = None) -> None:
    if workdir is not None:
        close_masters(workdir)
    names = lab_containers()
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
    for network in (CORP, INSIDE):
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def start(size: int) -> None:
    """A fresh lab of SIZE hosts, started and booted BATCH containers at a time."""
    stop()
    create_network(CORP)
    create_network(INSIDE, internal=True)
    start_container(BASTION, [CORP, INSIDE], LABEL)
    start_container(TARGET, [INSIDE], LABEL)
    wait_booted([BASTION, TARGET])
    names = clients(size)
    for first in range(0, len(names), BATCH):
        batch = names[first:first + BATCH]
        for name in batch:
            start_container(name, [CORP], LABEL)
        wait_booted(batch)
    for server in (BASTION, TARGET):
        sh(server, "systemctl start ssh")
    sh(TARGET, f"mkdir -p /srv/web && echo '{PAGE}' > /srv/web/index.html && "
               f"systemd-run --unit bench-banner socat TCP-LISTEN:119,fork,reuseaddr 'SYSTEM:echo {BANNER}' && "
               "systemd-run --unit bench-web python3 -m http.server 80 --bind 0.0.0.0 --directory /srv/web")


def address(name: str) -> str:
    """The container's address on its first network (corp for the clients and the bastion, inside for the target:
    the controller reaches both bridges)."""
    networks = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name],
                                         capture_output=True, text=True, check=True).stdout)
    return (networks.get(CORP) or networks[INSIDE])["IPAddress"]


def ssh_access(size: int, workdir: pathlib.Path) -> dict[str, str]:
    """Root logins by the run's key on every lab host, sshd running, their host keys in a known_hosts file of
    the run's own; returns each host's address."""
    key = workdir / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-bench", "-f", str(key)], check=True)
    public = (workdir / "id_ed25519.pub").read_text()
    addresses, known = {}, []
    for name in hosts(size):
        sh(name, "install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && "
                 "chmod 600 /root/.ssh/authorized_keys && systemctl start ssh", stdin=public)
        addresses[name] = address(name)
        host_key = sh(name, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        known.append(f"{addresses[name]} {' '.join(host_key)}")
    (workdir / "known_hosts").write_text("\n".join(known) + "\n")
    (workdir / "cp").mkdir(exist_ok=True)
    return addresses


def inventory(size: int, connection: str, workdir: pathlib.Path, addresses: dict[str, str]) -> dict:
    """The fleet's inventory: the same groups and variables a user writes for site.yml, and the connection's."""
    if connection == "ssh":
        common = {"ansible_connection": "ansible.builtin.ssh", "ansible_user": "root",
                  "ansible_ssh_private_key_file": str(workdir / "id_ed25519")}
    else:
        common = {"ansible_connection": "community.docker.docker"}
    common["ansible_python_interpreter"] = "/usr/bin/python3"

    def members(names: list[str]) -> dict:
        return {name: ({"ansible_host": addresses[name]} if connection == "ssh" else {}) for name in names}

    return {"all": {
        "vars": common,
        "children": {
            "tunnel_clients": {"hosts": members(clients(size)), "vars": {
                "tunnel_client_defaults": {"user": "tunnel"},
                "tunnel_client_tunnels": [
                    {"name": "news", "server": TARGET, "jump_hosts": [f"tunnel@{BASTION}:22"],
                     "local_forwards": ["12345:localhost:119"]},
                    {"name": "socks", "server": BASTION, "dynamic_forwards": ["127.0.0.1:3128"],
                     "server_allow_dynamic": True}]}},
            "proxy_clients": {"hosts": members(clients(size)), "vars": {"client_proxy": {
                "socks_proxy": "socks5h://127.0.0.1:3128", "no_proxy": ["localhost", "127.0.0.1", BASTION]}}},
            "tunnel_servers": {"hosts": members([BASTION, TARGET])}}}}


def env(connection: str, workdir: pathlib.Path) -> dict:
    settings = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                    ANSIBLE_PIPELINING="1", ANSIBLE_STRATEGY="linear")
    if connection == "ssh":
        settings.update(
            ANSIBLE_HOST_KEY_CHECKING="1", ANSIBLE_SSH_CONTROL_PATH_DIR=str(workdir / "cp"),
            ANSIBLE_SSH_ARGS=f"-o ControlMaster=auto -o ControlPersist={CONTROL_PERSIST} "
                             f"-o UserKnownHostsFile={workdir / 'known_hosts'} -o GlobalKnownHostsFile=/dev/null")
    return settings


def timed(command: list[str], settings: dict) -> tuple[float, dict]:
    """Wall time of COMMAND and the json callback's document; fails on any failed or unreachable host."""
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=settings, check=False)
    seconds = time.monotonic() - start
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{' '.join(command)}: no JSON result: {done.stdout[-2000:]}{done.stderr[-2000:]}") from None
    bad = {host: stats for host, stats in document["stats"].items() if stats["failures"] or stats["unreachable"]}
    if done.returncode != 0 or bad:
        raise RuntimeError(f"{' '.join(command)}: rc {done.returncode}, failed hosts {bad}: {done.stderr[-2000:]}")
    return seconds, document


def carries_traffic(client: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        banner = sh(client, "nc -w 3 127.0.0.1 12345 </dev/null || true", check=False)
        page = sh(client, f"curl -s -m 5 --socks5-hostname 127.0.0.1:3128 http://{TARGET}/ || true", check=False)
        if BANNER in banner and PAGE in page:
            return True
        time.sleep(1)
    return False


def stamp(value: str) -> float:
    return datetime.datetime.fromisoformat(value.rstrip("Z")).timestamp()


def task_seconds(document: dict) -> dict[str, float]:
    """Seconds per task (start to its last host result), summed over plays of the same name (serial batches)."""
    spent: dict[str, float] = {}
    for play in document["plays"]:
        for task in play["tasks"]:
            duration = task["task"]["duration"]
            if "end" not in duration:
                continue
            name = f"{play['play']['name']} / {task['task']['name']}"
            spent[name] = spent.get(name, 0.0) + stamp(duration["end"]) - stamp(duration["start"])
    return spent


def reaching_tasks(document: dict, host: str) -> int:
    """How many of the run's tasks reached HOST (not skipped, not a controller-only action)."""
    count = 0
    for play in document["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result and not result.get("skipped") and result.get("action") not in CONTROLLER_ACTIONS:
                count += 1
    return count


def breakdown(document: dict, wall: float) -> list[list]:
    """[task, seconds] by time spent, longest first, and what the run spent outside its tasks."""
    spent = task_seconds(document)
    rows = [[name, round(seconds, 2)] for name, seconds in sorted(spent.items(), key=lambda item: -item[1])]
    return rows + [["outside the tasks (ansible start, inventory, play setup)", round(wall - sum(spent.values()), 2)]]


def machine() -> dict:
    memory = {line.split(":")[0]: int(line.split()[1]) for line in pathlib.Path("/proc/meminfo").read_text().splitlines()}
    return {"load_average": [round(load, 1) for load in os.getloadavg()],
            "memory_available_gb": round(memory["MemAvailable"] / 2 ** 20, 1)}


def commit() -> str:
    """The checkout's commit the figures belong to (with "+changes" when the tree differs from it)."""
    here = pathlib.Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(here), "diff", "--quiet", "HEAD", "--", "plugins", "roles", "playbooks"],
                           check=False).returncode
    return head + ("+changes" if dirty else "")


def measure(size: int, connection: str, workdir: pathlib.Path) -> dict:
    before = machine()
    print(f"--- {size} hosts over {connection}: load {before['load_average']}, "
          f"{before['memory_available_gb']} GB available", flush=True)
    started = time.monotonic()
    start(size)
    boot = time.monotonic() - started
    addresses = ssh_access(size, workdir) if connection == "ssh" else {}
    settings = env(connection, workdir)
    path = workdir / f"fleet-{size}-{connection}.json"
    path.write_text(json.dumps(inventory(size, connection, workdir, addresses)))
    playbook = ["ansible-playbook", "netreach.tunnels.site", "-i", str(path), "--forks", str(FORKS)]
    load_converge = os.getloadavg()[0]
    converge, first = timed(playbook, settings)
    working = [client for client in clients(size) if carries_traffic(client)]
    if len(working) != len(clients(size)):
        raise RuntimeError(f"{size} hosts: no traffic through the tunnels of {sorted(set(clients(size)) - set(working))}")
    load_rerun = os.getloadavg()[0]
    rerun, second = timed(playbook, settings)
    changed = {host: stats["changed"] for host, stats in second["stats"].items() if stats["changed"]}
    if changed:
        raise RuntimeError(f"{size} hosts over {connection}: the rerun changed {changed}")
    ping = [timed(["ansible", "all", "-i", str(path), "-m", "ansible.builtin.ping", "--forks", str(FORKS)], settings)[0]
            for _ in range(3)]
    after = machine()
    some_client = clients(size)[0]
    figures = {
        "hosts": size, "clients": len(clients(size)), "connection": connection, "forks": FORKS,
        "boot_s": round(boot, 1), "converge_s": round(converge, 1), "rerun_s": round(rerun, 1),
        "ping_s": round(statistics.median(ping), 2), "ping_runs_s": [round(p, 2) for p in ping],
        "rerun_ping_ratio": round(rerun / statistics.median(ping), 2),
        "converge_changed_hosts": sum(1 for stats in first["stats"].values() if stats["changed"]),
        "rerun_task_headers": sum(len(play["tasks"]) for play in second["plays"]),
        "rerun_tasks_reaching_client": reaching_tasks(second, some_client),
        "rerun_tasks_reaching_server": {server: reaching_tasks(second, server) for server in (BASTION, TARGET)},
        "rerun_ok_per_client": round(statistics.mean(second["stats"][c]["ok"] for c in clients(size)), 1),
        "clients_carrying_traffic": len(working),
        "load_average_1m_at_converge": round(load_converge, 1), "load_average_1m_at_rerun": round(load_rerun, 1),
        "machine_before": before, "machine_after": after, "commit": commit(),
        "converge_breakdown": breakdown(first, converge), "rerun_breakdown": breakdown(second, rerun),
    }
    print(json.dumps({key: value for key, value in figures.items() if not key.endswith("breakdown")}), flush=True)
    print("  converge:", figures["converge_breakdown"][:6], flush=True)
    print("  rerun:", figures["rerun_breakdown"][:6], flush=True)
    return figures


def breakdown_rows(spent: list[list], total: float) -> list[str]:
    """The table rows of a breakdown: tasks of at least 1% of the run, then the rest summed, then the time
    outside the tasks."""
    rows, rest = [], 0.0
    for name, seconds in spent:
        if name.startswith("outside") or seconds >= 0.01 * total:
            rows.append(f"| {name} | {seconds:.1f} | {100 * seconds / total:.0f}% |")
        else:
            rest += seconds
    rows.insert(len(rows) - 1, f"| every other task (each under 1%) | {rest:.1f} | {100 * rest / total:.0f}% |")
    return rows


def report(results: list[dict], unfinished: list[str] | None = None) -> None:
    connections = list(dict.fromkeys(row["connection"] for row in results))
    lines = [f"![Fleet over {connection}: converge, idempotent rerun and ping floor per fleet size]"
             f"(plots/fleet-{connection}.svg)" for connection in connections]
    lines = [line for plot in lines for line in (plot, "")] + [
             "![Fleet: idempotent rerun / ping floor](plots/fleet-ratio.svg)", "",
             "| hosts (clients) | connection | converge | idempotent rerun | ping floor (median of 3) | rerun / ping | "
             "load (1 min) at converge, rerun | clients carrying traffic | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results:
        lines.append(f"| {row['hosts']} ({row['clients']}) | {row['connection']} | {row['converge_s']:.1f} s | "
                     f"{row['rerun_s']:.1f} s (changed=0) | {row['ping_s']:.2f} s | {row['rerun_ping_ratio']:.2f}x | "
                     f"{row['load_average_1m_at_converge']:g}, {row['load_average_1m_at_rerun']:g} | "
                     f"{row['clients_carrying_traffic']}/{row['clients']} | {row.get('commit', 'earlier')} |")
    worst = max(results, key=lambda row: row["rerun_ping_ratio"])
    counts = {(row["rerun_task_headers"], row["rerun_tasks_reaching_client"],
               tuple(row["rerun_tasks_reaching_server"].values()), row["rerun_ok_per_client"]) for row in results}
    lines += ["", f"- Goal of issue 17: rerun ≤ {RATIO_TARGET:g}x the ping floor at every size; worst here "
                  f"{worst['rerun_ping_ratio']:.2f}x ({worst['hosts']} hosts over {worst['connection']}): "
                  f"{'met' if worst['rerun_ping_ratio'] <= RATIO_TARGET else 'NOT met'}.",
              "- Tasks in the rerun (the same at every size and connection): " + "; ".join(
                  f"{headers} task headers, {client} reach a client (recap ok={ok:g}), {servers[0]} reach the "
                  f"bastion and {servers[1]} the target" for headers, client, servers, ok in sorted(counts)) + ".",
              "- Memory available before each lab: " + ", ".join(
                  f"{row['hosts']} hosts {row['connection']} {row['machine_before']['memory_available_gb']:g} GB"
                  for row in results) + "; booting the lab in batches of " + str(BATCH) + ": " + ", ".join(
                  f"{row['hosts']} hosts {row['boot_s']:.0f} s" for row in results) + "."]
    lines.append(f"- Before (main at 15ab73d, the same benchmark, same day): {BEFORE['rerun_task_headers']} task headers "
                 f"in the rerun, {BEFORE['client']} reach a client (recap ok={BEFORE['ok_per_client']}), "
                 f"{BEFORE['server']} reach each server; {BEFORE['figures']}.")
    for row in results:
        spent = dict(row["rerun_breakdown"])
        client = sum(seconds for name, seconds in spent.items() if any(call in name for call in CLIENT_CALLS))
        server = sum(seconds for name, seconds in spent.items() if name.startswith(SERVER_PLAY))
        rest = row["rerun_s"] - client - server
        lines.append(f"- Rerun of {row['hosts']} hosts over {row['connection']}: the calls that reach every "
                     f"client {client:.1f} s ({client / row['ping_s']:.1f}x the ping floor), the servers' play "
                     f"{server:.1f} s (clients wait), every other task and ansible's start {rest:.1f} s.")
    lines += [f"- Not measured: {note}" for note in unfinished or []]
    for row in results:
        # What each call that reached every client cost in the rerun, against one whole ping run: the ratio's floor.
        spent = dict(row["rerun_breakdown"])
        calls = [(call, seconds) for name, seconds in spent.items() for call in CLIENT_CALLS if call in name]
        lines.append(f"- Per call in the rerun of {row['hosts']} hosts over {row['connection']}: " + ", ".join(
            f"{call.lower()} {seconds / row['ping_s']:.2f}x a ping run" for call, seconds in calls) + f" (measured at "
            f"{row.get('commit', 'an earlier commit')}).")
    for connection in connections:
        row = max((row for row in results if row["connection"] == connection), key=lambda row: row["hosts"])
        lines += ["", f"Where the converge of {row['hosts']} hosts over {connection} goes ({row['converge_s']:.1f} s; "
                      "each task from its start to its last host result, as the json callback records them):", "",
                  f"![Where the converge of {row['hosts']} hosts over {connection} goes]"
                  f"(plots/fleet-converge-{connection}.svg)", "",
                  "| task (play / task) | seconds | share |", "|---|---|---|"]
        lines += breakdown_rows(row["converge_breakdown"], row["converge_s"])
        lines += ["", f"Where its idempotent rerun goes ({row['rerun_s']:.1f} s against a ping floor of "
                      f"{row['ping_s']:.1f} s):", "", "| task (play / task) | seconds | share |", "|---|---|---|"]
        lines += breakdown_rows(row["rerun_breakdown"], row["rerun_s"])
    print("\n".join(lines))
    write_section(TITLE,
                  f"`bench/fleet.py`, {time.strftime('%Y-%m-%d')}: for each size and connection a fresh lab (a "
                  "bastion, a target server, the rest clients that are tunnel_clients and proxy_clients with two "
                  "tunnels each, -L through the bastion as jump host and SOCKS; containers booted in batches of "
                  f"{BATCH}) runs `playbooks/site.yml` to converge, then once more (the idempotent rerun, changed=0 "
                  "on every host), then `ansible all -m ping` (median of 3: the floor, same connection, same run). "
                  "**ssh**: OpenSSH as root, host keys pinned, ControlMaster=auto, ControlPersist "
                  f"{CONTROL_PERSIST}, pipelining (the masters the converge opened serve rerun and pings alike); "
                  f"**docker**: community.docker.docker, pipelining. forks {FORKS}, linear strategy, 2 cores shared "
                  "with other work: the load averages stand beside the figures, ratios are within one run. After the "
                  "converge every client read the target's banner through -L and its page through SOCKS. Raw figures "
                  "(every task's time, converge and rerun) in `bench/results/fleet.json`.", lines)


def save(results: list[dict]) -> None:
    """The figures, and the notes of runs that did not finish (written by hand into the file: "unfinished")."""
    path = pathlib.Path(__file__).resolve().parent / "results" / "fleet.json"
    unfinished = json.loads(path.read_text()).get("unfinished", []) if path.exists() else []
    save_results("fleet", {"forks": FORKS, "pipelining": True, "ratio_target": RATIO_TARGET, "batch": BATCH,
                           "control_persist": CONTROL_PERSIST, "sizes": results, "unfinished": unfinished})


def earlier_results() -> list[dict]:
    """With FLEET_KEEP=1, the saved figures of the sizes and connections this run does not measure (a long run
    split in parts: the 100-host labs later, when the machine has the memory)."""
    path = pathlib.Path(__file__).resolve().parent / "results" / "fleet.json"
    if not os.environ.get("FLEET_KEEP") or not path.exists():
        return []
    measured = {(size, connection) for size in SIZES for connection in CONNECTIONS}
    return [row for row in json.loads(path.read_text()).get("sizes", [])
            if "connection" in row and (row["hosts"], row["connection"]) not in measured]


def main() -> int:
    if sys.argv[1:] == ["--report"]:
        saved = json.loads((pathlib.Path(__file__).resolve().parent / "results" / "fleet.json").read_text())
        report(saved["sizes"], saved.get("unfinished"))
        import plots
        plots.fleet()
        return 0
    results = earlier_results()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        try:
            for size in SIZES:
                for connection in CONNECTIONS:
                    try:
                        results.append(measure(size, connection, workdir))
                    finally:
                        close_masters(workdir)
                    results.sort(key=lambda row: (row["hosts"], CONNECTIONS.index(row["connection"])
                                                  if row["connection"] in CONNECTIONS else 9))
                    save(results)  # after every lab: a later failure loses nothing
        finally:
            if not os.environ.get("KEEP_LAB"):
                stop(workdir)
    report(results, json.loads((pathlib.Path(__file__).resolve().parent / "results" / "fleet.json").read_text())
           .get("unfinished"))
    import plots  # after the figures are saved and reported, so a plotting error loses nothing
    plots.fleet()
    return 0


if __name__ == "__main__":
    sys.exit(main())
