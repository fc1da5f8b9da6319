#!/usr/bin/python3
"""Firefox ESR headless, a fresh profile, loading URL through the proxy its enterprise policy gave it.

Run as an ordinary user: python3 firefox_marionette.py URL < credentials.json. The proxy policy cannot carry
credentials (Firefox asks for them once and keeps them in its login manager), so this script plays that user
over Marionette: it saves the proxy login the way the authentication prompt would, then loads URL; the policy's
AutoLogin makes Firefox answer Squid's 407 with it without a prompt. The credentials come on stdin, never on a
command line. Prints one JSON line: the page's title, the proxy prefs Firefox runs with, the seconds it took.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PORT = 2828
SAVE_LOGIN = """
const [origin, realm, user, password] = arguments;
const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
login.init(origin, null, realm, user, password, "", "");
return Services.logins.addLoginAsync(login).then(() => true);
"""
PREFS = """
return ["network.proxy.type", "network.proxy.http", "network.proxy.http_port", "signon.autologin.proxy"]
  .map(name => [name, Services.prefs.getPrefType(name) == Services.prefs.PREF_INT ? Services.prefs.getIntPref(name)
    : Services.prefs.getPrefType(name) == Services.prefs.PREF_BOOL ? Services.prefs.getBoolPref(name)
    : Services.prefs.getStringPref(name, "")]);
"""


class Marionette:
    def __init__(self, port: int, deadline: float):
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.buffer = b""
        self.message_id = 0
        self.receive()  # the handshake

    def receive(self):
        while b":" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        length, rest = self.buffer.split(b":", 1)
        while len(rest) < int(length):
            rest += self.sock.recv(65536)
        self.buffer = rest[int(length):]
        return json.loads(rest[:int(length)])

    def send(self, command: str, params: dict | None = None):
        self.message_id += 1
        data = json.dumps([0, self.message_id, command, params or {}]).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data)
        while True:
            message = self.receive()
            if message[0] == 1 and message[1] == self.message_id:
                if message[2]:
                    raise RuntimeError(f"{command}: {message[2].get('error')}: {message[2].get('message')}")
                return message[3]


def main() -> None:
    url = sys.argv[1]
    login = json.load(sys.stdin)
    profile = tempfile.mkdtemp(prefix="netreach-firefox-")
    started = time.monotonic()
    firefox = subprocess.Popen(["firefox-esr", "--headless", "--no-remote", "--profile", profile, "--marionette",
                                "--remote-allow-system-access", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, MOZ_HEADLESS="1"))
    try:
        client = Marionette(PORT, started + 90)
        client.send("WebDriver:NewSession", {"capabilities": {}})
        client.send("Marionette:SetContext", {"value": "chrome"})
        prefs = dict(client.send("WebDriver:ExecuteScript", {"script": PREFS, "args": []})["value"])
        client.send("WebDriver:ExecuteScript", {
            "script": SAVE_LOGIN, "args": [login["origin"], login["realm"], login["user"], login["password"]]})
        client.send("Marionette:SetContext", {"value": "content"})
        client.send("WebDriver:SetTimeouts", {"pageLoad": 60000})
        client.send("WebDriver:Navigate", {"url": url})
        title = client.send("WebDriver:GetTitle")["value"]
        print(json.dumps({"title": title, "prefs": prefs, "seconds": round(time.monotonic() - started, 1)}))
        try:
            client.send("Marionette:Quit", {"flags": ["eForceQuit"]})
        except (OSError, RuntimeError, ValueError):
            pass
    finally:
        try:
            firefox.wait(timeout=20)
        except subprocess.TimeoutExpired:
            firefox.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
