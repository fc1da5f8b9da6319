# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: what the metrics programs share. Not a public API. Standard library only:
# the programs that import it (_tunnel_metrics.py, _nat_metrics.py) are installed with this file inlined in place of
# their import line (_tunnel_helpers.program_text), so each installed program is one self-contained file.
"""node_exporter textfiles: the text exposition format, and a textfile replaced in one rename."""

from __future__ import annotations

import os
import tempfile


def escape(value: str) -> str:
    """A label value in the text exposition format."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in pairs.items()) + "}"


def exposition(metrics: tuple, samples: dict) -> str:
    """The textfile: for each (name, type, help) of METRICS its HELP and TYPE, then its SAMPLES[name] (lines of
    `{labels} value`), every family once and in METRICS' order."""
    lines = []
    for metric, kind, text in metrics:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines += [f"{metric}{sample}" for sample in samples.get(metric, [])]
    return "\n".join(lines) + "\n"


def write_atomically(directory: str, name: str, text: str) -> None:
    """DIRECTORY/NAME replaced by TEXT in one rename: a reader sees the old file or the new one, whole."""
    handle, scratch = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), 0o644)
            os.fsync(stream.fileno())
        os.replace(scratch, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(scratch)
        except OSError:
            pass
        raise
