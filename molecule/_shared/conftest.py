"""Every scenario's verify step also collects test_secrets_audit.py from here (the base config adds it)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
# The captured output is what the scenario's playbooks printed (create to idempotence), at -vvv. The verify step's own
# ansible runs stay out of it and run at the verbosity they ask for: testinfra starts by dumping the whole inventory,
# lab secrets included, through ansible-inventory, and tests parse the output of their ad hoc runs.
os.environ.pop("ANSIBLE_LOG_PATH", None)
os.environ.pop("ANSIBLE_VERBOSITY", None)


def pytest_collection_modifyitems(items):
    """Run the secrets audit after the scenario's own tests, so it also sees what their ad hoc runs wrote and logged."""
    items.sort(key=lambda item: os.path.basename(str(item.fspath)) == "test_secrets_audit.py")
