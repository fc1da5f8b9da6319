"""Stand-in for pip's get-pip.py bootstrap script, for ansible-test on machines that reach only PyPI.

ansible-test bootstraps pip in each sanity venv by running get-pip.py from its own file server, which is not
reachable here; it accepts a copy at ~/.ansible/test/cache/get_pip_<version>.py. This script does the same job
with what Python ships: ensurepip, then `pip install` of the requested packages (pip==<version>) from PyPI.
get-pip's own --no-setuptools/--no-wheel switches mean "do not add them", which is already the case here.
"""
from __future__ import annotations

import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)
