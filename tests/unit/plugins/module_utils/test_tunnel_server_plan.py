"""The tunnel server's plan against a fake root: authorized_keys in the account's home, the drop-in checked live
by sshd -t and put back, the reaper, and confinement (a symlinked ~/.ssh is refused)."""
from __future__ import annotations

import os
import pwd

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import parse_server
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server_apply import plan_server
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties

# An account that exists on every Debian host, with a group of its own name; its home stands in the fake root.
ACCOUNT = "daemon"
HOME = pwd.getpwnam(ACCOUNT).pw_dir
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINEWS"
PARAMS = dict(
    accounts=[ACCOUNT], managed_clients=None, known_clients=None, client_alive_interval=15, client_alive_count_max=3,
    sshd_dropin="/etc/ssh/sshd_config.d/50-netreach-tunnels.conf", reaper=True, state="present",
    entries=[{"account": ACCOUNT, "client": "laptop", "tunnel": "news", "public_key": KEY, "opens": ["newshost:119"]}],
)


def real(tmp_path, path: str) -> str:
    return os.path.join(str(tmp_path), path.lstrip("/"))


def host(tmp_path):
    os.makedirs(real(tmp_path, "/etc/ssh/sshd_config.d"), exist_ok=True)
    with open(real(tmp_path, "/etc/ssh/sshd_config"), "w", encoding="utf-8") as stream:
        stream.write("Include /etc/ssh/sshd_config.d/*.conf\n")
    os.makedirs(real(tmp_path, HOME), exist_ok=True)


def run(tmp_path, params=None, check=False, answers=None):
    module = FakeModule(tmp_path, check_mode=check, answers=answers or {
        ("systemctl", "show"): systemctl_show(lambda unit: unit_properties(True, True))})
    plan = Plan(module)
    extra = plan_server(plan, parse_server(dict(PARAMS, **(params or {}))))
    return plan.commit(**extra), module


def changing(module):
    return [args for args in module.commands if args[:2] not in (["systemctl", "show"], ["systemctl", "is-enabled"],
                                                                 ["systemctl", "cat"])]


def test_the_server_goes_through_the_four_steps(tmp_path):
    host(tmp_path)
    before = snapshot(str(tmp_path))
    first, module = run(tmp_path, check=True)
    assert first["changed"] and snapshot(str(tmp_path)) == before and changing(module) == []
    applied, module = run(tmp_path)
    assert applied["changed"] and set(applied) == set(first)
    assert ["sshd", "-t", "-f", "/etc/ssh/sshd_config"] in module.commands
    assert ["systemctl", "reload", "ssh.service"] in module.commands
    again, _module = run(tmp_path, check=True)
    rerun, module = run(tmp_path)
    assert not again["changed"] and not rerun["changed"] and changing(module) == []
    with open(real(tmp_path, f"{HOME}/.ssh/authorized_keys"), encoding="utf-8") as stream:
        assert stream.read().startswith('restrict,port-forwarding,permitopen="newshost:119"')
    assert rerun["authorized"] == {ACCOUNT: ["laptop/news"]}
    with open(real(tmp_path, "/usr/local/lib/netreach/tunnel-reaper"), encoding="utf-8") as stream:
        assert "class Reaper" in stream.read()


def test_a_dropin_sshd_rejects_is_put_back_and_the_run_fails(tmp_path):
    host(tmp_path)
    run(tmp_path)
    dropin = real(tmp_path, "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf")
    with open(dropin, encoding="utf-8") as stream:
        previous = stream.read()
    with pytest.raises(Failed) as failure:
        run(tmp_path, {"client_alive_interval": 30}, answers={("sshd", "-t"): (255, "", "Bad configuration option")})
    assert failure.value.result["field"] == "sshd_dropin" and "put back" in failure.value.result["msg"]
    with open(dropin, encoding="utf-8") as stream:
        assert stream.read() == previous


def test_a_new_dropin_sshd_rejects_is_removed_again(tmp_path):
    host(tmp_path)
    with pytest.raises(Failed):
        run(tmp_path, answers={("sshd", "-t"): (255, "", "Bad configuration option")})
    assert not os.path.lexists(real(tmp_path, "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"))


@pytest.mark.parametrize("level", [".ssh", ".ssh/authorized_keys"])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_symlinked_ssh_directory_or_file_is_refused(tmp_path, level, state):
    host(tmp_path)
    run(tmp_path)
    victim = tmp_path / "etc" / "shadow-like"
    victim.write_text("root:secret\n")
    path = real(tmp_path, f"{HOME}/{level}")
    os.rename(path, path + ".moved")
    os.symlink(str(victim) if level.endswith("keys") else str(tmp_path / "etc"), path)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, {"state": state, "entries": [] if state == "absent" else PARAMS["entries"]})
    assert failure.value.result["field"] == "accounts" and "symbolic link" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_absent_removes_our_entries_the_dropin_and_the_reaper_but_keeps_foreign_lines(tmp_path):
    host(tmp_path)
    run(tmp_path)
    keys = real(tmp_path, f"{HOME}/.ssh/authorized_keys")
    with open(keys, "a", encoding="utf-8") as stream:
        stream.write("ssh-ed25519 AAAAADMIN admin@desk\n")
    result, module = run(tmp_path, {"state": "absent", "entries": []})
    assert result["changed"] and ["systemctl", "disable", "--now", "netreach-tunnel-reaper.service"] in module.commands
    with open(keys, encoding="utf-8") as stream:
        assert stream.read() == "ssh-ed25519 AAAAADMIN admin@desk\n"
    assert not os.path.lexists(real(tmp_path, "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"))
    assert not os.path.lexists(real(tmp_path, "/etc/systemd/system/netreach-tunnel-reaper.service"))


def test_a_missing_account_is_a_change_in_check_mode_and_a_failure_naming_it_otherwise(tmp_path):
    host(tmp_path)
    params = {"accounts": [ACCOUNT, "netreach-nosuchuser"]}
    result, _module = run(tmp_path, params, check=True)
    assert result["changed"]
    with pytest.raises(Failed) as failure:
        run(tmp_path, params)
    assert failure.value.result["field"] == "accounts" and "netreach-nosuchuser" in failure.value.result["msg"]


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize(("changes", "field"), [
    ({"accounts": ["root"]}, "accounts"), ({"accounts": ["../../root"]}, "accounts"), ({"accounts": ["a/b"]}, "accounts"),
    ({"accounts": [".."]}, "accounts"), ({"accounts": [" ../x"]}, "accounts"),
    ({"sshd_dropin": "/etc/ssh/sshd_config.d/../../shadow.conf"}, "sshd_dropin"),
    ({"sshd_dropin": "/etc/passwd"}, "sshd_dropin"), ({"sshd_dropin": "/etc/ssh/sshd_config.d/x"}, "sshd_dropin"),
    ({"sshd_dropin": "/etc/ssh/sshd_config.d/.conf"}, "sshd_dropin"),
])
def test_hostile_accounts_and_dropins_are_refused_in_every_state(changes, field, state):
    with pytest.raises(DeclarationError) as info:
        parse_server(dict(PARAMS, state=state, **changes))
    assert info.value.field == field


def test_the_host_keys_come_back_as_the_facts_setup_gathers(tmp_path):
    """The facts the client role pins (ansible_ssh_host_key_*_public, as setup's ssh_pub_keys subset names them),
    in check mode too; a file that is not one public key line is left out, a missing one gives no fact."""
    host(tmp_path)
    keys = {"ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOST root@bastion\n",
            "ecdsa": "ecdsa-sha2-nistp384 AAAAE2VjZHNhHOST\n", "rsa": "not a key\n"}
    for key_type, text in keys.items():
        with open(real(tmp_path, f"/etc/ssh/ssh_host_{key_type}_key.pub"), "w", encoding="utf-8") as stream:
            stream.write(text)
    expected = {"ansible_ssh_host_key_ed25519_public": "AAAAC3NzaC1lZDI1NTE5AAAAIHOST",
                "ansible_ssh_host_key_ed25519_public_keytype": "ssh-ed25519",
                "ansible_ssh_host_key_ecdsa_public": "AAAAE2VjZHNhHOST",
                "ansible_ssh_host_key_ecdsa_public_keytype": "ecdsa-sha2-nistp384"}
    for check in (True, False):
        assert run(tmp_path, check=check)[0]["ansible_facts"] == expected
    os.remove(real(tmp_path, "/etc/ssh/ssh_host_ecdsa_key.pub"))
    assert set(run(tmp_path)[0]["ansible_facts"]) == {"ansible_ssh_host_key_ed25519_public",
                                                      "ansible_ssh_host_key_ed25519_public_keytype"}


def test_ports_become_port_lines_before_any_match_checked_by_sshd_then_reloaded(tmp_path):
    host(tmp_path)
    run(tmp_path)
    applied, module = run(tmp_path, {"ports": [22, 443]})
    assert applied["changed"] and applied["sshd_reloaded"]
    with open(real(tmp_path, "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf"), encoding="utf-8") as stream:
        text = stream.read()
    assert "\nPort 22\nPort 443\n" in text and text.index("Port 443") < text.index("Match User")
    sshd_t, reload = ["sshd", "-t", "-f", "/etc/ssh/sshd_config"], ["systemctl", "reload", "ssh.service"]
    assert module.commands.index(sshd_t) < module.commands.index(reload)
    assert not any(args[:2] == ["systemctl", "restart"] for args in module.commands)
    rerun, module = run(tmp_path, {"ports": [22, 443]})
    assert not rerun["changed"] and changing(module) == []


@pytest.mark.parametrize(("ports", "field"), [([0], "ports[0]"), ([22, 65536], "ports[1]"), ([443, 22, 443], "ports[2]"),
                                              (["22x"], "ports[0]"), ([True], "ports[0]"), ("22", "ports")])
def test_bad_ports_are_refused_naming_the_field_before_any_change(tmp_path, ports, field):
    host(tmp_path)
    before = snapshot(str(tmp_path))
    with pytest.raises(DeclarationError) as failure:
        run(tmp_path, {"ports": ports})
    assert failure.value.field == field and snapshot(str(tmp_path)) == before


def test_a_run_for_some_clients_keeps_what_the_other_clients_keys_allow_in_the_dropin(tmp_path):
    """managed_clients (a --limit run, or an ad hoc call with no entries) keeps the other clients' authorized_keys
    lines, and the account's Match block keeps their opens, listens and sockets: their next session still works."""
    host(tmp_path)
    desk = [{"account": ACCOUNT, "client": "desk", "tunnel": "web", "public_key": KEY + "DESK",
             "opens": ["web.internal:80"], "listens": ["localhost:2222"], "socket_opens": ["/run/lab/web.sock"]},
            {"account": ACCOUNT, "client": "desk", "tunnel": "socks", "public_key": KEY + "SOCKS", "any_open": True}]
    run(tmp_path, {"entries": PARAMS["entries"] + desk})
    dropin = real(tmp_path, "/etc/ssh/sshd_config.d/50-netreach-tunnels.conf")
    with open(dropin, encoding="utf-8") as stream:
        full = stream.read()
    assert "PermitOpen any" in full and "PermitListen localhost:2222" in full, full
    for params in ({"managed_clients": ["laptop"]}, {"managed_clients": [], "entries": []}):
        result, _module = run(tmp_path, params)
        with open(dropin, encoding="utf-8") as stream:
            assert stream.read() == full
        assert not result["changed"], result
    # Without the any-open key the account's PermitOpen lists the targets again, the socket among them.
    with open(real(tmp_path, HOME + "/.ssh/authorized_keys"), encoding="utf-8") as stream:
        lines = [line for line in stream if "desk/socks" not in line]
    with open(real(tmp_path, HOME + "/.ssh/authorized_keys"), "w", encoding="utf-8") as stream:
        stream.writelines(lines)
    run(tmp_path, {"managed_clients": [], "entries": []})
    with open(dropin, encoding="utf-8") as stream:
        text = stream.read()
    assert "PermitOpen newshost:119 web.internal:80 [/run/lab/web.sock]:*" in text, text
