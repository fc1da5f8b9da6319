"""Settings shared by the unit tests."""
from __future__ import annotations

from hypothesis import settings

# Hypothesis' default 200 ms deadline per example fails tests by the clock on a loaded 2-core machine (the lab's
# scenarios run next to the unit tests): what a fuzz test checks is the output, never how fast it came.
settings.register_profile("netreach", deadline=None)
settings.load_profile("netreach")
