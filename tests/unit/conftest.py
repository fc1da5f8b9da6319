"""Hypothesis settings for every unit test: what the properties check is the output, never how fast it came. On
a loaded 2-core CI machine (the lab's scenarios run next to the unit tests) the default 200 ms deadline per example
and the "too slow" health check fail correct code."""
from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

settings.register_profile("netreach", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("netreach")

# tests/unit/fakehost.py (the one fake module of the apply-layer tests) is importable as `fakehost` everywhere.
sys.path.insert(0, os.path.dirname(__file__))
