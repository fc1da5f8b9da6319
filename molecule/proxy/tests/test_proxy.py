"""netreach.tunnels.client_proxy proven by the clients themselves.

The client sits on "corp"; the repo (apt, git, pip, npm, an intranet page over HTTP; sshd on 22 and 443) on
"inside"; Debian's Squid on the proxy is the only way between them, and it asks for Basic authentication
(CORP\\alice, a password with every URL-special character). No test sets a proxy variable: each client finds
the proxy and the credentials where converge.yml had the modules write them, and Squid's access.log shows every
request with the user it authenticated. The sessions are proven in test_sessions.py; test_zz_absent.py removes
everything last.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from urllib.parse import quote as quote_url
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from squidlab import (CONVERGED, NPM, PASSWORD, PIP, REPO_PAGE, THROUGH_SQUID, USER, client, on_client, run_module, squid_entries,
                      squid_log_lines, through_proxy, wait_for_entry)

CACHE = Path(os.environ.get("HOME", "/root")) / ".cache" / "netreach-tunnels" / "proxy-scenario"


# --- the proxy at every layer, as CORP\\alice ------------------------------------------------------------------

def test_the_client_cannot_reach_the_repo_without_the_proxy():
    result = client().run("curl -sS --noproxy '*' --max-time 5 http://proxy-repo/")
    assert result.rc != 0, "the client reached the repo directly: the lab does not prove anything"


def test_squid_asks_for_the_password_and_refuses_a_wrong_one_or_a_lowercased_user():
    for name, proxy in (("no credentials", "http://proxy-proxy:8080"),
                        ("a wrong password", "http://CORP%5Calice:wrong@proxy-proxy:8080"),
                        ("the user lowercased", f"http://corp%5Calice:{quote_url(PASSWORD, safe='')}@proxy-proxy:8080")):
        done = on_client(["curl", "-sS", "-K", "-", "-o", "/dev/null", "-w", "%{http_code}", "http://proxy-repo/"],
                         f'proxy = "{proxy}"\nnoproxy = ""\n')
        assert done.stdout == "407", f"{name}: Squid answered {done.stdout} {done.stderr}, not 407"


def test_login_shell_curl_uses_the_environment():
    out = through_proxy("curl -sSf --max-time 10 http://proxy-repo/", "http://proxy-repo/", login=True,
                        name="login shell curl")
    assert REPO_PAGE in out


def test_a_systemd_service_sees_the_proxy():
    env = client().check_output("systemd-run --wait --pipe --quiet env")
    proxies = dict(line.split("=", 1) for line in env.splitlines() if line.lower().startswith(("http_", "https_")))
    assert set(proxies) >= {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"}, sorted(proxies)
    url = urlsplit(proxies["http_proxy"])
    assert unquote(url.password) == PASSWORD and unquote(url.username) == USER
    out = through_proxy("systemd-run --wait --pipe --quiet curl -sSf --max-time 10 http://proxy-repo/index.html",
                        "http://proxy-repo/index.html", name="systemd service")
    assert REPO_PAGE in out


def test_apt_update_and_download_from_the_inside_repo():
    through_proxy("apt-get update", "http://proxy-repo/apt/", name="apt")
    client().run("rm -f /tmp/netreach-hello_1.0_all.deb")
    through_proxy("cd /tmp && apt-get download netreach-hello", "http://proxy-repo/apt/./netreach-hello_1.0_all.deb",
                  name="apt")
    assert client().file("/tmp/netreach-hello_1.0_all.deb").exists


def test_git_clone_over_dumb_http():
    client().run("rm -rf /tmp/x")
    through_proxy("git clone -q http://proxy-repo/x.git /tmp/x", "http://proxy-repo/x.git/info/refs", name="git")
    assert "netreach lab git repository" in client().file("/tmp/x/README").content_string


def test_pip_download_from_the_inside_index():
    client().run("rm -rf /tmp/pipdl")
    through_proxy(f"{PIP} download --no-deps --disable-pip-version-check --trusted-host proxy-repo "
                  "--index-url http://proxy-repo/simple/ -d /tmp/pipdl netreach-hello",
                  "http://proxy-repo/simple/netreach-hello/", name="pip")
    assert client().file("/tmp/pipdl/netreach_hello-1.0-py3-none-any.whl").exists


def test_wget_uses_wgetrc():
    out = through_proxy("wget -q -O - http://proxy-repo/index.html", "http://proxy-repo/index.html", name="wget")
    assert REPO_PAGE in out


def test_sudo_keeps_the_proxy_and_the_credentials():
    root = client().check_output("env -i HOME=/root bash -lc 'printenv http_proxy'")
    kept = client().check_output("env -i HOME=/root bash -lc 'sudo -u nobody printenv http_proxy'")
    assert kept == root and unquote(urlsplit(kept).password) == PASSWORD
    out = through_proxy("sudo -u nobody curl -sSf --max-time 10 http://proxy-repo/index.html",
                        "http://proxy-repo/index.html", login=True, name="sudo")
    assert REPO_PAGE in out
    out = through_proxy("sudo -E -u nobody curl -sSf --max-time 10 http://proxy-repo/", "http://proxy-repo/",
                        login=True, name="sudo")
    assert REPO_PAGE in out


def test_npm_reaches_the_lab_registry():
    client().run("rm -rf /tmp/npmc /tmp/npmproj && mkdir -p /tmp/npmproj")
    out = through_proxy(f"{NPM} --cache /tmp/npmc view netreach-hello version", "http://proxy-repo/npm/netreach-hello",
                        name="npm")
    assert out.strip() == "1.0.0"
    client().run("rm -rf /tmp/npmc")
    through_proxy(f"cd /tmp/npmproj && {NPM} --cache /tmp/npmc install netreach-hello",
                  "http://proxy-repo/npm/netreach-hello-1.0.0.tgz", name="npm")
    assert "inside registry" in client().file("/tmp/npmproj/node_modules/netreach-hello/index.js").content_string


def test_firefox_loads_an_intranet_page_through_its_policy_as_an_ordinary_user():
    """Firefox ESR headless, a fresh profile of an ordinary user; the proxy from the policy we wrote. The policy
    holds no password: the user's saved proxy login (what Firefox's prompt would keep) answers Squid's 407."""
    start = squid_log_lines()
    login = json.dumps({"origin": "moz-proxy://proxy-proxy:8080", "realm": "netreach lab proxy",
                        "user": USER, "password": PASSWORD})
    done = on_client(["env", "HOME=/home/ffuser", "timeout", "150", "python3", "/opt/netreach-lab/firefox_marionette.py",
                      "http://proxy-repo/intranet.html"], login, user="ffuser")
    assert done.returncode == 0, f"Firefox did not load the page: {done.stdout}{done.stderr}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nFirefox ESR: {result}")
    assert result["title"] == "netreach intranet", result
    assert result["prefs"]["network.proxy.http"] == "proxy-proxy" and result["prefs"]["signon.autologin.proxy"] is True
    found = wait_for_entry(start, "GET", "http://proxy-repo/intranet.html", USER)
    assert found, "Squid did not serve the page to Firefox as CORP\\alice:\n" + \
        "\n".join(entry["line"] for entry in squid_entries(start))
    THROUGH_SQUID["firefox"] = [entry["line"] for entry in squid_entries(start)]


def test_the_socks_forward_is_in_the_environment_and_no_proxy_is_normalised():
    env = client().check_output("env -i HOME=/root bash -lc env")
    socks = urlsplit(re.search(r"^all_proxy=(.*)$", env, re.M).group(1))
    assert (socks.scheme, socks.hostname, socks.port) == ("socks5h", "127.0.0.1", 3128)
    assert "NO_PROXY=localhost,127.0.0.1,::1,.corp.example,10.0.0.0/8" in env


# --- Firefox ESR and Thunderbird policies ------------------------------------------------------------------

# Debian package -> (its omni.ja holding the policy engine, its omni.ja holding the policy schema, the file it reads).
APPS = {
    "firefox-esr": ("./usr/lib/firefox-esr/omni.ja", "./usr/lib/firefox-esr/browser/omni.ja",
                    "/etc/firefox/policies/policies.json"),
    # /usr/lib/thunderbird/omni.ja is a symbolic link to this file.
    "thunderbird": ("./usr/share/thunderbird/omni.ja", "./usr/share/thunderbird/omni.ja",
                    "/etc/thunderbird/policies/policies.json"),
}


@functools.cache
def package_file(package: str, member: str, path: str) -> bytes:
    """PATH inside the omni.ja MEMBER of Debian's PACKAGE, downloaded once into the controller's cache with apt;
    nothing of it is kept in the repository."""
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob(f"{package}_*.deb"))
    if not debs:
        download = ["apt-get", "download", package]
        if subprocess.run(download, cwd=CACHE, capture_output=True, timeout=300, check=False).returncode != 0:
            # A machine whose apt lists were never fetched (host-setup.sh found every package installed).
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=300)
            subprocess.run(download, cwd=CACHE, check=True, capture_output=True, timeout=300)
        debs = sorted(CACHE.glob(f"{package}_*.deb"))
    omni = CACHE / (package + "_" + member.strip("./").replace("/", "_"))
    if not omni.exists() or omni.stat().st_size == 0 or omni.stat().st_mtime < debs[-1].stat().st_mtime:
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], check=True, capture_output=True).stdout
        content = subprocess.run(["tar", "-x", "-O", member], input=tar, check=True, capture_output=True).stdout
        assert content, f"{member} of {debs[-1].name} is empty (a symbolic link?)"
        omni.write_bytes(content)
    with zipfile.ZipFile(omni) as archive:
        return archive.read(path)


def policy_schema(package: str) -> dict:
    return json.loads(package_file(package, APPS[package][1], "modules/policies/policies-schema.json"))


@pytest.mark.parametrize("package", sorted(APPS))
def test_each_application_reads_the_system_policies_file_we_write(package):
    """Firefox and Thunderbird read SysConfD/policies/policies.json (SysConfD = /etc/ + the application name in lower
    case) when built with MOZ_SYSTEM_POLICIES; the package's own AppConstants give the name and say whether."""
    engine = APPS[package][0]
    constants = package_file(package, engine, "modules/AppConstants.sys.mjs").decode()
    parent = package_file(package, engine, "modules/EnterprisePoliciesParent.sys.mjs").decode()
    assert re.search(r"MOZ_SYSTEM_POLICIES:\s*true", constants)
    assert 'Services.dirsvc.get("SysConfD"' in parent and 'systemConfigFile.append("policies")' in parent
    name = re.search(r'MOZ_APP_BASENAME:\s*"([^"]+)"', constants).group(1)
    assert f"/etc/{name.lower()}/policies/policies.json" == APPS[package][2]
    assert client().file(APPS[package][2]).exists


def validate_policies(document: dict, package: str = "firefox-esr") -> None:
    """Validate like Firefox does: each policy against its schema, properties the schema does not name rejected."""

    def closed(node):
        if isinstance(node, dict):
            node = {key: closed(value) for key, value in node.items()}
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                    and "patternProperties" not in node:
                node["additionalProperties"] = False
        elif isinstance(node, list):
            node = [closed(item) for item in node]
        return node

    strict = closed(policy_schema(package))
    validator = jsonschema.validators.validator_for(strict)(strict)
    errors = sorted(validator.iter_errors(document["policies"]), key=str)
    assert not errors, "\n".join(error.message for error in errors)


@pytest.mark.parametrize(("path", "schema_of"), [
    ("/etc/firefox/policies/policies.json", "firefox-esr"),
    ("/etc/thunderbird/policies/policies.json", "firefox-esr"),
    ("/etc/thunderbird/policies/policies.json", "thunderbird"),
])
def test_policies_validate_against_the_shipped_schema(path, schema_of):
    document = json.loads(client().file(path).content_string)
    validate_policies(document, schema_of)
    proxy = document["policies"]["Proxy"]
    assert proxy["Mode"] == "manual" and proxy["Locked"] is True
    assert proxy["HTTPProxy"] == "proxy-proxy:8080" and proxy["SOCKSProxy"] == "127.0.0.1:3128"
    assert proxy["SOCKSVersion"] == 5 and proxy["UseProxyForDNS"] is True
    assert proxy["Passthrough"] == "localhost, 127.0.0.1, ::1, .corp.example, 10.0.0.0/8"


def test_the_schema_check_rejects_a_bad_proxy_policy():
    with pytest.raises(AssertionError):
        validate_policies({"policies": {"Proxy": {"Mode": "manual", "SOCKSVersion": 6}}})
    with pytest.raises(AssertionError):
        validate_policies({"policies": {"Proxy": {"Mode": "manual", "HTTPProxyHost": "x:1"}}})


def test_other_policies_are_kept():
    document = json.loads(client().file("/etc/firefox/policies/policies.json").content_string)
    assert document["policies"]["DisableTelemetry"] is True


# --- credentials ------------------------------------------------------------------------------------------

CREDENTIAL_FILES = ["/etc/environment", "/etc/profile.d/netreach-proxy.sh", "/etc/systemd/system.conf.d/netreach-proxy.conf",
                    "/etc/apt/apt.conf.d/80netreach-proxy", "/etc/gitconfig", "/etc/pip.conf", "/etc/npmrc", "/etc/wgetrc",
                    "/etc/systemd/system/docker.service.d/netreach-proxy.conf", "/root/.putty/sessions/repo%20news",
                    "/root/.putty/netreach-repo%20news.reg"]


def test_the_files_holding_the_credentials_are_0600():
    host = client()
    for path in CREDENTIAL_FILES:
        assert host.file(path).mode == 0o600, f"{path} holds the password but is {oct(host.file(path).mode)}"


def test_a_layer_its_consumer_sees_otherwise_fails_naming_the_layer():
    """No silent success: a later apt.conf.d file of someone else overrides our proxy; apt-config dump shows it."""
    host = client()
    host.check_output("printf 'Acquire::http::Proxy \"http://elsewhere:3128\";\\n' > /etc/apt/apt.conf.d/99zz-lab-other")
    try:
        result = run_module("client_proxy", **CONVERGED)
        assert result.get("failed") and result.get("field") == "apt", result
        assert "Acquire::http::Proxy is 'http://elsewhere:3128'" in result["msg"], result["msg"]
        assert PASSWORD not in json.dumps(result) and quote_url(PASSWORD, safe="") not in json.dumps(result)
    finally:
        host.check_output("rm -f /etc/apt/apt.conf.d/99zz-lab-other")
    assert not run_module("client_proxy", **CONVERGED).get("failed")
