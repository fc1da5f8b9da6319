"""A session's pinned host keys in each client's own spelling. The PuTTY cache strings below are what plink 0.78
(Debian 12's putty-tools) itself wrote to ~/.putty/sshhostkeys when told to store these three keys."""
from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._session_hostkeys import (
    merge_putty_hostkeys,
    parse_known_hosts,
    putty_host_keys,
    putty_key,
    render_known_hosts,
    winscp_fingerprint,
    winscp_host_key,
)

ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIHo3AHjIuHszXOGnyGddz/nLsSXEp4d+j5UqpEw1cdwr"
ECDSA = ("AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPqD7jcVzYzkv7pUGuSg5kBW/SJfnULvThIq1Hxf9aFi+Xd+o4ZCYSVl"
         "G3wfIV3hOqS+Q+m6tXZrFQojdj7OsJg=")
RSA = ("AAAAB3NzaC1yc2EAAAADAQABAAABgQCJbmsQjICpV8mal4hBGcVvQxtFLWnjCc3CM7oqKs+u6f1f8tZ1YFMh8PqIIgs9cGchV5fWmXrJGvup"
       "hSLWXjycimeti25rRB3iEbGT1h4Dpb9shBzLuLGiHCIS7qOZZK2TM4rxpIk6msheuIGwkDAxYlkqk+LLH1WGvmuRqsnC6mzl+IKkoEYLpkxxu"
       "KhTL/cHZzDENljqnYFKiooTc/JeHNLuBGFPtiXgQq+frFw+4FCLkBjl8DVwCC/DQbf/2K1/hgCXaMdIKRwZihoC7fpq8TDo/2X9LTE1bZ5B0za"
       "f5/yp4q+m5i806IOps8oaiL/3Hb3fzqILBmodzOdjrX267pgyFJwpiggYfuUPMchhpQO5F217L8HeAlstdXSPP3N80ubiNQCWnAlRzx4/Lb/rMU"
       "Cbr+6RxIazBi5LN59saHXB0N5WcQdq7OGy82OzO73DMjsfQUNo3I2mp+a+O8pqqTFTCxmM/kDuNscSpPR09FMa+X8/KHpHt9a0EjvdItU=")
# What plink 0.78 stored for these keys (the RSA modulus shortened to its ends: the test compares the whole).
PUTTY_ED25519 = ("0x778e1dd27e0fb0ac8fa20fb428aeeb311b48293573bea685ec70b7a809361d3c,"
                 "0x2bdc71354ca42a958f7e87a7c425b1cbf9cf5d67c8a7e15c337bb8c87800377a")
PUTTY_ECDSA = ("nistp256,0xfa83ee3715cd8ce4bfba541ae4a0e64056fd225f9d42ef4e122ad47c5ff5a162,"
               "0xf9777ea386426125651b7c1f215de13aa4be43e9bab5766b150a23763eceb098")
PUTTY_RSA_START = "0x10001,0x896e6b108c80a957c99a9788"
PUTTY_RSA_END = ("a1dcce763ad7dbaee9832149c298a08187ee50f31c861a503b9176d7b2fc1de025b2d75748f3f737cd2e6e23500969c0951cf1e3f2"
                 "dbfeb31409bafee91c486b3062e4b379f6c6875c1d0de5671076aece1b2f363b33bbdc3323b1f414368dc8da6a7e6be3bca6aa931"
                 "530b198cfe40ee36c712a4f474f4531af97f3f287a47b7d6b4123bdd22d5")


def keys(*lines: str):
    return parse_known_hosts(list(lines))


def test_putty_cache_strings_are_what_plink_itself_stores():
    ed, ec, rsa = keys(f"h ssh-ed25519 {ED25519}", f"h ecdsa-sha2-nistp256 {ECDSA} root@x", f"h ssh-rsa {RSA}")
    assert putty_key(ed) == ("ssh-ed25519", PUTTY_ED25519)
    assert putty_key(ec) == ("ecdsa-sha2-nistp256", PUTTY_ECDSA)
    cache_id, value = putty_key(rsa)
    assert cache_id == "rsa2" and value.startswith(PUTTY_RSA_START) and value.endswith(PUTTY_RSA_END)
    assert putty_host_keys([ed], "proxy-repo", 443) == [("ssh-ed25519@443:proxy-repo", PUTTY_ED25519)]


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
@pytest.mark.parametrize(("key_type", "key", "bits"), [
    ("ssh-ed25519", ED25519, 255), ("ecdsa-sha2-nistp256", ECDSA, 256), ("ssh-rsa", RSA, 3072)])
def test_winscp_fingerprints_carry_type_bits_and_the_sha256_ssh_keygen_prints(tmp_path, key_type, key, bits):
    (tmp_path / "k.pub").write_text(f"{key_type} {key}\n")
    shown = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)
    size, digest = shown.stdout.split()[:2]
    assert winscp_fingerprint(keys(f"h {key_type} {key}")[0]) == f"{key_type} {bits} {digest[7:]}="
    # PuTTY and WinSCP count an Ed25519 key as 255 bits, ssh-keygen as 256.
    assert int(size) == (256 if key_type == "ssh-ed25519" else bits)


def test_winscp_host_key_separates_fingerprints_by_semicolons():
    value = winscp_host_key(list(keys(f"h ssh-ed25519 {ED25519}", f"h ssh-rsa {RSA}")))
    assert value.count(";") == 1 and value.startswith("ssh-ed25519 255 ") and ";ssh-rsa 3072 " in value


def test_a_line_names_its_host_literally_by_port_in_a_list_or_hashed():
    salt = b"0123456789abcdefghij"
    hashed = base64.b64encode(hmac.new(salt, b"[repo]:443", hashlib.sha1).digest()).decode()
    plain, port, listed, hashed_key = keys(f"repo ssh-ed25519 {ED25519}", f"[repo]:443 ssh-ed25519 {ED25519}",
                                           f"other,repo,10.0.0.5 ssh-ed25519 {ED25519}",
                                           f"|1|{base64.b64encode(salt).decode()}|{hashed} ssh-ed25519 {ED25519}")
    assert plain.names("repo", 22) and not plain.names("repo", 443) and not plain.names("repo2", 22)
    assert port.names("repo", 443) and not port.names("repo", 22)
    assert listed.names("repo", 22) and listed.names("10.0.0.5", 22)
    assert hashed_key.names("repo", 443) and not hashed_key.names("repo", 22)
    assert render_known_hosts((plain, port)) == f"repo ssh-ed25519 {ED25519}\n[repo]:443 ssh-ed25519 {ED25519}\n"


@pytest.mark.parametrize("line", [
    f"repo ssh-ed25519 {ED25519}\nevil ssh-ed25519 {ED25519}",
    f"repo ssh-ed25519 {ED25519}\n",
    f"repo ssh-ed25519 {ED25519}\r",
    f"repo ssh-ed25519 {ED25519}\x00",
    f"@cert-authority *.corp ssh-ed25519 {ED25519}",
    f"@revoked repo ssh-ed25519 {ED25519}",
    f"*.corp ssh-ed25519 {ED25519}",
    f"!repo ssh-ed25519 {ED25519}",
    f"#repo ssh-ed25519 {ED25519}",
    f"repo ssh-ed25519 {ED25519} comment\x0bwith a control",
    "repo ssh-ed25519 !!notbase64!!",
    f"repo ssh-rsa {ED25519}",
    f"repo ssh-dss {ED25519}",
    f"repo  ssh-ed25519 {ED25519}",
    "repo ssh-ed25519",
    "",
])
def test_bad_known_hosts_lines_are_refused_naming_the_line(line):
    with pytest.raises(DeclarationError) as error:
        parse_known_hosts(["repo ssh-ed25519 " + ED25519, line])
    assert error.value.field == "known_hosts[1]"


def test_known_hosts_must_be_a_list_of_text():
    with pytest.raises(DeclarationError) as error:
        parse_known_hosts("repo ssh-ed25519 " + ED25519)
    assert error.value.field == "known_hosts"
    with pytest.raises(DeclarationError) as error:
        parse_known_hosts([{"host": "repo"}])
    assert error.value.field == "known_hosts[0]"


def test_the_putty_block_keeps_other_keys_replaces_ours_and_goes_away():
    other = "rsa2@22:elsewhere 0x10001,0xabc\n"
    entries = [("ssh-ed25519@443:repo", "0x1,0x2")]
    first = merge_putty_hostkeys(other + "ssh-ed25519@443:repo 0xold,0xold\n", "repo news", entries)
    # A new block goes first; a line of the same id outside it would shadow or be shadowed: it goes.
    assert first == ("# BEGIN netreach.tunnels client_session repo news\nssh-ed25519@443:repo 0x1,0x2\n"
                     "# END netreach.tunnels client_session repo news\n" + other)
    # PuTTY appends a key it stores after our block; a second run keeps that line and our block where it was.
    later = first + "ssh-ed25519@22:third 0x5,0x6\n"
    assert merge_putty_hostkeys(later, "repo news", [("ssh-ed25519@443:repo", "0x3,0x4")]) == \
        later.replace("0x1,0x2", "0x3,0x4")
    assert merge_putty_hostkeys(later, "repo news", None) == other + "ssh-ed25519@22:third 0x5,0x6\n"
    assert merge_putty_hostkeys(other, "repo news", None) == other
    assert merge_putty_hostkeys(None, "repo news", None) == ""
