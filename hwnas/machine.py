"""What a latency depends on besides the runtime: processor, frequency governor, GPU."""
from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def cpu_model() -> str:
    """The processor's marketing name (/proc/cpuinfo on Linux), else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_slug(model: str | None = None) -> str:
    """`model` (default cpu_model()) as a short file-name-safe slug, e.g. 'intel-xeon-processor'."""
    name = re.sub(r"\((r|tm)\)|cpu|@.*$|\d+-core processor", " ", (model or cpu_model()).lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:40] or platform.machine().lower()


def cpu_governor() -> str | None:
    """The CPU frequency governor where the kernel exposes it (frequency scaling skews latency)."""
    try:
        return GOVERNOR.read_text().strip()
    except OSError:
        return None


def gpu_present() -> tuple[bool, str]:
    """(True, "") when an NVIDIA GPU is visible, else (False, why not)."""
    try:
        import torch

        if torch.cuda.is_available():
            return True, ""
    except ImportError:
        pass
    if any(Path("/dev").glob("nvidia[0-9]*")):
        return True, ""
    return False, "no NVIDIA GPU on this machine (torch.cuda.is_available() is False and no /dev/nvidia*)"


def gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10)
            return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            return None
    return None
