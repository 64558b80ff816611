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


# Vector instruction sets onnxruntime's kernels (MLAS) choose between at start-up, narrowest first
# (each implies the ones before it on real parts). Cloud guests often share one marketing name
# ("Intel(R) Xeon(R) Processor") across generations that differ here, and so run other kernels.
X86_ISA = (("sse4_1", "sse4.1"), ("avx", "avx"), ("avx2", "avx2"), ("avx512f", "avx512"),
           ("avx512_vnni", "avx512-vnni"), ("amx_tile", "amx"))
ARM_ISA = (("asimd", "neon"), ("asimddp", "neon-dot"), ("i8mm", "neon-i8mm"), ("sve", "sve"))


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's 'key: value' lines of /proc/cpuinfo (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_isa(fields: dict[str, str] | None = None) -> str | None:
    """The widest vector instruction set this CPU offers the runtime, e.g. 'avx2' or 'amx'; None
    when /proc/cpuinfo does not say."""
    fields = _cpuinfo_fields() if fields is None else fields
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    best = None
    for flag, name in (X86_ISA if "flags" in fields else ARM_ISA):
        if flag in flags:
            best = name
    return best


def cpu_id(fields: dict[str, str] | None = None) -> str | None:
    """Vendor, family, model and stepping ('GenuineIntel 6/143/8'; on ARM implementer/part/variant):
    tells apart generations that share a marketing name. None when /proc/cpuinfo does not say."""
    fields = _cpuinfo_fields() if fields is None else fields
    for keys in (("vendor_id", "cpu family", "model", "stepping"),
                 ("CPU implementer", "CPU architecture", "CPU part", "CPU variant")):
        if all(fields.get(k) for k in keys):
            return f"{fields[keys[0]]} " + "/".join(fields[k] for k in keys[1:])
    return None


def cpu_hardware() -> dict:
    """What a CPU latency depends on in the processor itself (a latency table's fingerprint)."""
    fields = _cpuinfo_fields()
    return {"processor": cpu_model(), "cpu_id": cpu_id(fields), "cpu_isa": cpu_isa(fields),
            "cpu_governor": cpu_governor()}


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
