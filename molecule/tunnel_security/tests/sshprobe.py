"""A scripted SSH client (paramiko) that asks an sshd for one thing at a time and reports whether it got it.

Each probe opens its own connection with the given key, makes one request and answers "granted" or "refused"
with the reason. Used by the forward-control matrix of the tunnel_security scenario.
"""
from __future__ import annotations

import socket
import time

import paramiko

TIMEOUT = 10.0


class Probe:
    def __init__(self, address: str, port: int, user: str, key_file: str, host_key: str | None = None) -> None:
        self.address, self.port, self.user = address, port, user
        self.key = paramiko.Ed25519Key.from_private_key_file(key_file)
        self.host_key = host_key

    def _connect(self) -> paramiko.Transport:
        sock = socket.create_connection((self.address, self.port), timeout=TIMEOUT)
        transport = paramiko.Transport(sock)
        transport.start_client(timeout=TIMEOUT)
        if self.host_key is not None:
            got = f"{transport.get_remote_server_key().get_name()} {transport.get_remote_server_key().get_base64()}"
            if got != self.host_key:
                transport.close()
                raise AssertionError(f"host key of {self.address} is {got}, expected {self.host_key}")
        transport.auth_publickey(self.user, self.key)
        return transport

    def authenticates(self) -> tuple[bool, str]:
        try:
            transport = self._connect()
        except paramiko.AuthenticationException as exc:
            return False, f"authentication refused ({exc})"
        transport.close()
        return True, "authenticated"

    def direct_tcpip(self, host: str, port: int) -> tuple[bool, str]:
        """-L: ask the server to connect to HOST:PORT (a listener must be there for a granted open)."""
        transport = self._connect()
        try:
            channel = transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 40000), timeout=TIMEOUT)
            channel.close()
            return True, "channel opened"
        except paramiko.ChannelException as exc:
            return False, f"open failed: {exc.text} (code {exc.code})"
        finally:
            transport.close()

    def tcpip_forward(self, address: str, port: int) -> tuple[bool, str]:
        """-R: ask the server to listen on ADDRESS:PORT."""
        transport = self._connect()
        try:
            transport.request_port_forward(address, port)
            return True, "listening"
        except paramiko.SSHException as exc:
            return False, f"request denied ({exc})"
        finally:
            transport.close()

    def _session(self, request) -> tuple[bool, str]:
        transport = self._connect()
        try:
            try:
                channel = transport.open_session(timeout=TIMEOUT)
            except paramiko.ChannelException as exc:
                return False, f"session refused: {exc.text}"
            return request(channel)
        finally:
            transport.close()

    def exec_command(self, command: str, proof: str | None = None) -> tuple[bool, str]:
        """Run COMMAND; granted only if it ran: its output contains PROOF (a marker it prints)."""
        def run(channel):
            try:
                channel.exec_command(command)
            except paramiko.SSHException as exc:
                return False, f"exec refused ({exc})"
            channel.settimeout(TIMEOUT)
            # Read to the end of the channel: output may arrive after the exit status.
            out = channel.makefile("rb").read() + channel.makefile_stderr("rb").read()
            text = out.decode(errors="replace").strip().replace("\n", " ")
            ran = proof is not None and proof in text
            return ran, f"exit {channel.recv_exit_status()}: {text[:60]!r}"
        return self._session(run)

    def shell(self, proof: str) -> tuple[bool, str]:
        def run(channel):
            try:
                channel.invoke_shell()
            except paramiko.SSHException as exc:
                return False, f"shell refused ({exc})"
            try:
                channel.send(f"echo {proof}-ok\n".encode())
            except OSError:
                pass  # the server already ended the session: whatever it printed is read below
            out = b""
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not channel.exit_status_ready():
                if channel.recv_ready():
                    out += channel.recv(65536)
                time.sleep(0.1)
            text = out.decode(errors="replace")
            return f"{proof}-ok" in text, f"got {text.strip()[:60]!r}"
        return self._session(run)

    def pty(self) -> tuple[bool, str]:
        def run(channel):
            try:
                channel.get_pty()
                return True, "pty allocated"
            except paramiko.SSHException as exc:
                return False, f"pty refused ({exc})"
        return self._session(run)

    def x11(self) -> tuple[bool, str]:
        def run(channel):
            try:
                channel.request_x11(auth_protocol="MIT-MAGIC-COOKIE-1", auth_cookie="0" * 32)
                return True, "x11 forwarding granted"
            except paramiko.SSHException as exc:
                return False, f"x11 refused ({exc})"
        return self._session(run)

    def agent(self) -> tuple[bool, str]:
        def run(channel):
            # paramiko sends this request without asking for a reply; ask for one ourselves.
            message = paramiko.Message()
            message.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
            message.add_int(channel.remote_chanid)
            message.add_string("auth-agent-req@openssh.com")
            message.add_boolean(True)
            channel.event.clear()
            channel.transport._send_user_message(message)
            channel._wait_for_event()  # raises when the server answers failure
            return True, "agent forwarding granted"
        def guarded(channel):
            try:
                return run(channel)
            except paramiko.SSHException as exc:
                return False, f"agent forwarding refused ({exc})"
        return self._session(guarded)

    def tun(self) -> tuple[bool, str]:
        """-w: ask for a tun@openssh.com channel (point-to-point, any unit)."""
        transport = self._connect()
        try:
            channel = _open_raw_channel(transport, "tun@openssh.com", lambda m: (m.add_int(1), m.add_int(0x7FFFFFFF)))
            channel.close()
            return True, "tun channel opened"
        except paramiko.ChannelException as exc:
            return False, f"open failed: {exc.text} (code {exc.code})"
        finally:
            transport.close()


def _open_raw_channel(transport: paramiko.Transport, kind: str, add_fields) -> paramiko.Channel:
    """Transport.open_channel for a channel type paramiko does not know, with its type-specific fields."""
    import threading
    with transport.lock:
        chanid = transport._next_channel()
        message = paramiko.Message()
        message.add_byte(paramiko.common.cMSG_CHANNEL_OPEN)
        message.add_string(kind)
        message.add_int(chanid)
        message.add_int(transport.default_window_size)
        message.add_int(transport.default_max_packet_size)
        add_fields(message)
        channel = paramiko.Channel(chanid)
        transport._channels.put(chanid, channel)
        transport.channel_events[chanid] = event = threading.Event()
        transport.channels_seen[chanid] = True
        channel._set_transport(transport)
        channel._set_window(transport.default_window_size, transport.default_max_packet_size)
    transport._send_user_message(message)
    start = time.monotonic()
    while not event.is_set():
        event.wait(0.1)
        if not transport.is_active():
            raise paramiko.ChannelException(2, "transport closed")
        if time.monotonic() - start > TIMEOUT:
            raise paramiko.ChannelException(2, "timeout")
    chan = transport._channels.get(chanid)
    if chan is not None:
        return chan
    raise transport.saved_exception or paramiko.ChannelException(2, "refused")
