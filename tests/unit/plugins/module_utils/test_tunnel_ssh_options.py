"""ssh_options (issue 16): the allow-list, the refused keywords, the rendering into every hop, the cipher order by
CPU, and no accepted value able to add a line or a keyword; checked with the real `ssh -G` where ssh exists."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel import TunnelError, parse_tunnel
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_render import render_ssh_config
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_ssh_options import (
    AES_CIPHERS,
    ALLOWED,
    OWN,
    REFUSED,
    cpu_has_aes,
    parse_ssh_options,
)

BASE = dict(
    name="news", server="newshost.example.org", port=22, user="tunnel", run_as="netreach-tunnel",
    known_hosts=["newshost.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"], jump_hosts=["j1", "u2@j2:2200"],
    proxy=None, local_forwards=["12345:localhost:119"], remote_forwards=[], dynamic_forwards=[], engine="ssh",
    keepalive_interval=5, keepalive_count_max=3, connect_timeout=10, restart_delay=1, restart_max_delay=30,
)
SSH = shutil.which("ssh")
X86 = "processor\t: 0\nflags\t\t: fpu vme sse2 ssse3 aes avx2 pclmulqdq\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
NO_AES = "processor\t: 0\nflags\t\t: fpu vme sse2 ssse3 avx2 aesx\n"


def config(options=None, aes_hardware=False) -> str:
    return render_ssh_config(parse_tunnel({**BASE, "ssh_options": options or {}}), aes_hardware)


def test_cpu_flags_decide_the_cipher_order():
    assert cpu_has_aes(X86) and cpu_has_aes(ARM)
    assert not cpu_has_aes(NO_AES) and not cpu_has_aes(None) and not cpu_has_aes("")
    # every block (two jump hosts and the server) prefers AES-GCM on AES hardware; otherwise ssh's own order
    assert config(aes_hardware=True).count(f"    Ciphers {AES_CIPHERS}\n") == 3
    assert "Ciphers" not in config(aes_hardware=False)
    assert AES_CIPHERS.startswith("aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com")


def test_options_go_into_every_hop_and_override_the_cipher_order():
    text = config({"ciphers": "aes128-gcm@openssh.com", "IPQoS": "af21 cs1", "Compression": True,
                   "ConnectionAttempts": 3}, aes_hardware=True)
    for line in ("    Ciphers aes128-gcm@openssh.com\n", "    IPQoS af21 cs1\n", "    Compression yes\n",
                 "    ConnectionAttempts 3\n"):
        assert text.count(line) == 3, text
    assert AES_CIPHERS not in text


@pytest.mark.parametrize("keyword", sorted(REFUSED) + [k.lower() for k in REFUSED] + [k.upper() for k in REFUSED])
def test_refused_keywords_are_refused_naming_the_field(keyword):
    with pytest.raises(TunnelError) as info:
        parse_ssh_options({keyword: "yes"})
    assert info.value.field == f"ssh_options.{keyword}"
    assert "refused" in str(info.value)


@pytest.mark.parametrize("keyword", sorted(OWN))
def test_our_own_options_are_never_set_twice(keyword):
    with pytest.raises(TunnelError, match=f"set by the option {OWN[keyword]}"):
        parse_ssh_options({keyword: "1"})


def test_the_allow_list_and_refused_lists_do_not_overlap():
    assert not set(ALLOWED) & set(REFUSED) and not set(ALLOWED) & set(OWN) and not set(OWN) & set(REFUSED)
    for keyword in ("StrictHostKeyChecking", "UserKnownHostsFile", "GlobalKnownHostsFile", "KnownHostsCommand",
                    "ProxyCommand", "LocalCommand", "PermitLocalCommand", "Match", "Include"):
        assert keyword in REFUSED


def _rendered_options(text: str) -> list[str]:
    baseline = config().splitlines()
    return [line for line in text.splitlines() if line not in baseline]


VALUE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.text(
    alphabet="aes128-gcm@openssh.com, \n\r\t%#\"'\\=+^-0123456789KMGsmhdwyno\x0b\x0c\x85\u2028", max_size=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyword=st.sampled_from(sorted(ALLOWED)), value=VALUE_TEXT | st.integers() | st.booleans())
def test_no_accepted_value_adds_a_line_or_a_keyword(keyword, value):
    try:
        options = {keyword: value}
        text = config(options)
    except TunnelError as exc:
        assert exc.field.startswith("ssh_options")
        return
    added = _rendered_options(text)
    assert len(added) == 3, added  # one line in each of the three blocks, nothing else
    for line in added:
        word, dummy, rest = line.strip().partition(" ")
        assert word == keyword and re.fullmatch(ALLOWED[keyword], rest)
        assert not re.search(r"[\s%#\"'\\=]", rest.replace(" ", "", 1 if keyword in ("IPQoS", "RekeyLimit") else 0))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ALLOWED)).flatmap(
    lambda keyword: st.tuples(st.just(keyword), st.from_regex(f"\\A{ALLOWED[keyword]}\\Z"))))
def test_every_value_the_patterns_admit_renders_one_line_per_hop(pair):
    keyword, value = pair
    assert _rendered_options(config({keyword: value})) == [f"    {keyword} {value}"] * 3


def _ssh_query(kind: str) -> list[str]:
    return subprocess.run([SSH, "-Q", kind], capture_output=True, text=True, check=True).stdout.split()


REAL_VALUES = {
    "Ciphers": "cipher", "MACs": "mac", "KexAlgorithms": "kex", "HostKeyAlgorithms": "key",
    "PubkeyAcceptedAlgorithms": "key", "CASignatureAlgorithms": "sig",
}


def real_options():
    """Options ssh itself knows: algorithm lists from `ssh -Q`, every other keyword from its pattern."""
    if not SSH:
        return st.nothing()
    lists = {keyword: _ssh_query(kind) for keyword, kind in REAL_VALUES.items()}
    algorithm = st.sampled_from(sorted(lists)).flatmap(lambda keyword: st.tuples(
        st.just(keyword), st.lists(st.sampled_from(lists[keyword]), min_size=1, max_size=4, unique=True).map(",".join)))
    other = st.sampled_from(sorted(set(ALLOWED) - set(lists))).flatmap(
        lambda keyword: st.tuples(st.just(keyword), st.from_regex(f"\\A{ALLOWED[keyword]}\\Z")))
    return st.lists(algorithm | other, min_size=1, max_size=5, unique_by=lambda pair: pair[0]).map(dict)


@pytest.mark.skipif(SSH is None, reason="no ssh on this machine: `ssh -G` cannot check the rendered config")
@settings(max_examples=60, deadline=None)
@given(options=real_options(), aes_hardware=st.booleans())
def test_real_ssh_accepts_the_rendered_config(tmp_path_factory, options, aes_hardware):
    path = tmp_path_factory.mktemp("ssh") / "ssh_config"
    path.write_text(config(options, aes_hardware))
    done = subprocess.run([SSH, "-G", "-F", str(path), "netreach-news"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    effective = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert effective["stricthostkeychecking"] == "true"
    assert effective["userknownhostsfile"] == "/etc/netreach/tunnels/news/known_hosts"
    assert "proxycommand" not in effective and "localcommand" not in effective
    if "Ciphers" in options:
        assert effective["ciphers"] == options["Ciphers"]
    elif aes_hardware:
        assert effective["ciphers"] == AES_CIPHERS
    if "ConnectionAttempts" in options:
        assert effective["connectionattempts"] == options["ConnectionAttempts"]


def _plan_ssh_config(tmp_path, cpuinfo: str | None, options: dict, check: bool = False) -> tuple[dict, str | None]:
    """Plan BASE (no jump hosts) with OPTIONS against a fake root whose /proc/cpuinfo holds CPUINFO."""
    from ansible_collections.netreach.tunnels.plugins.module_utils import _tunnel_apply as apply
    from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
    from fakehost import FakeModule, systemctl_show, unit_properties

    if cpuinfo is not None:
        (tmp_path / "proc").mkdir(exist_ok=True)
        (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    answers = {("systemctl", "show"): systemctl_show(lambda unit: unit_properties(False, False)),
               ("ssh-keygen",): (0, "", "")}
    module = FakeModule(tmp_path, check_mode=check, answers=answers)
    plan = Plan(module)
    tunnel = parse_tunnel({**BASE, "jump_hosts": [], "run_as": "root", "identity_file": "/etc/key",
                           "ssh_options": options})
    apply.plan_tunnel(plan, tunnel, "present", False)
    result = plan.commit()
    path = tmp_path / "etc" / "netreach" / "tunnels" / "news" / "ssh_config"
    return result, path.read_text() if path.exists() else None


@pytest.mark.parametrize(("cpuinfo", "expected"), [(X86, f"    Ciphers {AES_CIPHERS}\n"), (ARM, f"    Ciphers {AES_CIPHERS}\n"),
                                                   (NO_AES, None), (None, None)])
def test_the_plan_reads_the_clients_cpu_for_the_cipher_order(tmp_path, cpuinfo, expected):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "key").write_text("key\n")
    (tmp_path / "etc" / "key.pub").write_text("ssh-ed25519 AAAA\n")
    checked, text = _plan_ssh_config(tmp_path, cpuinfo, {}, check=True)
    assert checked["changed"] and text is None
    applied, text = _plan_ssh_config(tmp_path, cpuinfo, {})
    assert applied["changed"] and (expected in text if expected else "Ciphers" not in text)
    again, _text = _plan_ssh_config(tmp_path, cpuinfo, {})
    assert not again["changed"]
    # an ssh_options Ciphers wins over the CPU's order, and changes the file
    changed, text = _plan_ssh_config(tmp_path, cpuinfo, {"Ciphers": "aes128-gcm@openssh.com"})
    assert changed["changed"] and text.count("Ciphers") == 1 and "    Ciphers aes128-gcm@openssh.com\n" in text


def test_the_role_merges_default_ssh_options_under_each_tunnels():
    from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_fleet import client_declaration

    defaults = {"ssh_options": {"IPQoS": "af21 cs1", "Ciphers": "aes256-ctr"}}
    tunnels = [{"name": "a", "ssh_options": {"Ciphers": "aes128-gcm@openssh.com"}}, {"name": "b"}]
    wanted = {"IPQoS": "af21 cs1", "Ciphers": "aes128-gcm@openssh.com"}
    assert client_declaration(tunnels, "a", defaults)["ssh_options"] == wanted
    assert client_declaration(tunnels, "b", defaults)["ssh_options"] == defaults["ssh_options"]
