"""The secrets audit of every scenario (molecule/_shared/audit.py) must be able to fail: fed a log, a journal or
files that leak a secret, it reports each leak, without repeating the secret in its report."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "molecule", "_shared")
_spec = importlib.util.spec_from_file_location("lab_audit", os.path.join(SHARED, "audit.py"))
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

SECRET = "Pr0xy-s3cret-42"
INVENTORY = {
    "group_vars": {"tunnel_clients": {
        "tunnels_proxy_password": SECRET,
        "tunnel_client_tunnels": [{"name": "authproxy", "proxy": {"username": "netreach",
                                                                  "password": "{{ tunnels_proxy_password }}"}}],
        "api_token": "tok-1234567890",
        "tunnel_client_defaults": {"user": "tunnel"},
    }},
}


def private_key() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


def test_secret_values_are_every_password_like_value_but_not_templates():
    assert audit.secret_values(INVENTORY) == {SECRET, "tok-1234567890"}


def test_a_secret_is_found_as_it_is_and_percent_encoded():
    secret = "s3cr@t:pass/word"
    log = "TASK [proxy] ok: [client] => {'environment': 'http_proxy=http://alice:s3cr%40t%3Apass%2Fword@proxy:8080'}\n"
    needles = {spelling: "password #1" for spelling in audit.spellings(secret)}
    leaks = audit.find_leaks(log, needles, "the log")
    assert len(leaks) == 1 and leaks[0].startswith("password #1 shows in the log (line 1: ")
    assert "http://alice:<secret>@proxy:8080" in leaks[0] and "s3cr%40t" not in leaks[0]
    assert audit.find_leaks(log.replace("s3cr%40t%3Apass%2Fword", "********"), needles, "the log") == []


def test_a_log_holding_a_secret_fails_and_the_report_does_not_repeat_it():
    log = "line one\n<client> EXEC ['/bin/sh', '-c', 'curl -U netreach:" + SECRET + " http://proxy']\nlast line\n"
    leaks = audit.find_leaks(log, {SECRET: "password #1"}, "the captured ansible output")
    assert leaks == ["password #1 shows in the captured ansible output (line 2: <client> EXEC ['/bin/sh', '-c', "
                     "'curl -U netreach:<secret> http://proxy'])"]
    assert SECRET not in "".join(leaks)
    assert audit.find_leaks("nothing here\n", {SECRET: "password #1"}, "the log") == []


def test_every_line_of_a_private_key_body_is_a_needle():
    key = private_key()
    body = key.strip().splitlines()[1:-1]
    lines = audit.key_material(key)
    assert lines and set(lines) <= set(body) and all(len(line) >= audit.MIN_KEY_LINE for line in lines)
    assert audit.is_private_key(key) and not audit.is_private_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI x\n")
    # A journal line that holds one line of the key is a leak.
    journal = f"MESSAGE=Invoked with content={lines[-1]}\n"
    assert audit.find_leaks(journal, {line: "private key c:/k" for line in lines}, "the journal")
    assert audit.key_material("no key here\n") == []


def test_lines_of_the_public_key_are_no_needles():
    key = private_key()
    lines = audit.key_material(key)
    public = "ssh-ed25519 " + lines[0] + " comment\n"
    assert audit.key_material(key, public) == lines[1:]


def test_putty_private_lines_are_needles_and_public_lines_are_not():
    ppk = ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: lab\nPublic-Lines: 2\n"
           "AAAAC3NzaC1lZDI1NTE5AAAAIPublicPublicPublicPublic\nAAAApublicpublicpublicpublicpublic\n"
           "Private-Lines: 1\nAAAAIPrivatePrivatePrivatePrivatePrivate\nPrivate-MAC: 0123\n")
    assert audit.key_material(ppk) == ["AAAAIPrivatePrivatePrivatePrivatePrivate"]
    assert audit.is_private_key(ppk)


@pytest.mark.parametrize(("item", "problems"), [
    ({"path": "/etc/netreach/tunnels/news/proxy_auth", "mode": 0o100600, "user": "netreach-tunnel"}, 0),
    ({"path": "/etc/netreach/tunnels/news/proxy_auth", "mode": 0o100640, "user": "netreach-tunnel"}, 1),
    ({"path": "/etc/netreach/tunnels/news/proxy_auth", "mode": 0o100600, "user": "root"}, 1),
    ({"path": "/etc/netreach/tunnels/gone/id_ed25519", "mode": 0o100600, "user": "tun", "dir_group": "tun"}, 0),
    ({"path": "/etc/netreach/tunnels/gone/id_ed25519", "mode": 0o100600, "user": "root", "dir_group": "tun"}, 1),
    ({"path": "/etc/environment", "mode": 0o100644, "user": "root"}, 1),
    ({"path": "/etc/apt/apt.conf.d/90netreach-proxy", "mode": 0o100600, "user": "root"}, 0),
    ({"path": "/home/alice/.npmrc", "mode": 0o100600, "user": "root"}, 1),
    ({"path": "/home/alice/.npmrc", "mode": 0o100666, "user": "root"}, 2),
    ({"path": "/etc/tinyproxy/auth.conf", "mode": 0o100640, "user": "root"}, 0),
    ({"path": "/etc/tinyproxy/auth.conf", "mode": 0o100644, "user": "root"}, 1),
])
def test_a_file_holding_a_secret_must_be_0600_and_owned_by_its_user(item, problems):
    found = audit.file_problems([{**item, "what": "a password"}], {"alice": "/home/alice", "root": "/root"},
                                {"news": "netreach-tunnel"}, {"/etc/tinyproxy/auth.conf": "read by tinyproxy's group"})
    assert len(found) == problems, found


def test_the_captured_verbose_output_of_a_playbook_shows_a_leak_and_not_a_no_log_value(tmp_path):
    """The base config's capture (ANSIBLE_LOG_PATH, ANSIBLE_VERBOSITY=3, --diff) catches a task that prints a secret."""
    playbook = tmp_path / "leak.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy: {dest: '" + str(tmp_path / "kept") + "', content: 'kept {{ secret }}', mode: '0600'}\n"
        "      no_log: true\n"
        "    - ansible.builtin.copy: {dest: '" + str(tmp_path / "leaked") + "', content: 'pw={{ leaked }}', mode: '0600'}\n")
    log = tmp_path / "ansible.log"
    env = dict(os.environ, ANSIBLE_LOG_PATH=str(log), ANSIBLE_VERBOSITY="3", ANSIBLE_NOCOLOR="1")
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
                    "--diff", str(playbook), "-e", f"secret={SECRET}", "-e", "leaked=Leaked-pa55word",
                    "-e", f"ansible_python_interpreter={sys.executable}"],
                   env=env, check=True, capture_output=True, text=True, timeout=120)
    text = log.read_text()
    assert "ESTABLISH LOCAL CONNECTION" in text, "ANSIBLE_VERBOSITY=3 did not reach the log"
    needles = {SECRET: "password #1", "Leaked-pa55word": "password #2"}
    leaks = audit.find_leaks(text, needles, "the log")
    line = text[:text.index("Leaked-pa55word")].count("\n") + 1
    assert len(leaks) == 1 and leaks[0].startswith(f"password #2 shows in the log (line {line}: ")
    assert "Leaked-pa55word" not in leaks[0] and SECRET not in leaks[0]
