"""LatencyTable: `latency_tables/<device>.json`, one measured latency per operation (+ e2e timings).

Layout (schema_version 1):
  schema_version, device, created_utc, fingerprint {runner, runtime versions, provider,
  processor/GPU, threads, batch, precision, space, dataset, input_shape ...},
  settings {warmup, repeats, ...}   how it was measured (not part of the identity)
  entries {OpSpec.key: {op, c_in, c_out, h, w, stride, extra, median_ms, iqr_ms, p10_ms,
           p90_ms, p99_ms, mean_ms, min_ms, n, outliers}; shape-preserving ops also chain_copies,
           chain_median_ms, chain_iqr_ms, marginal_ms (their cost inside a graph)}
  e2e {arch string: Timing}         whole architectures timed end to end (validation ones also
                                    recheck_median_ms: timed again minutes later; measured_ms)
  calibration {mode, a, b, [factors | reorder_ms, relu_ms, add_ms], table_sum, linear, archs, curve}
                                    measured ~= a * table sum (+ per-class / layout terms) + b
                                    (hwnas/latency/model.py); no mode = linear (older tables);
                                    table_sum: all | distinct (ops the runtime merges priced
                                    once, shared_ops.py); absent = all (older tables)
  validation {raw: {...}, calibrated: {...}, calibrated_linear: {...}, archs}
  noise {ops_rel_iqr_median, e2e_rel_iqr_median, e2e_split_half_rel_diff_median, ...}
                                    how noisy the machine was (hwnas/latency/verdict.py)
  verdict {level: good | usable | poor, reason, advice, thresholds}
                                    computed from validation (and noise) when absent (older tables)
  cost {op_seconds, op_models, op_timed_runs, e2e_seconds, e2e_models, e2e_timed_runs}
  clock {references, levels_ms, drift}  the reference clock every timing was scaled by (timing.py)

The file is rewritten atomically after every measurement, so an interrupted profile resumes
where it stopped: entries already in a table with the same fingerprint are not measured again.
"""
from __future__ import annotations

import json
import math
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

from hwnas.errors import DataError, HwnasError
from hwnas.io import write_json_atomic
from hwnas.latency.shared_ops import SUM_RULES
from hwnas.timing import Timing
from hwnas.spaces.base import OpSpec

SCHEMA_VERSION = 1
# What to do about a file that is not a table: it may be the user's own (device.path), so never "delete it".
FIX_HINT = ("point device.path at a table written by hwnas-profile, or re-run hwnas-profile (overwrite=true) "
            "to rewrite it")

def _shipped_table_dir() -> Path:
    """The committed tables: latency_tables/ of a source checkout (editable install), else the copy
    a wheel installs under <prefix>/share/hwnas/latency_tables (pyproject data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "latency_tables"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hwnas" / "latency_tables"


TABLE_DIR = _shipped_table_dir()  # read-only: what the user measures goes to userdirs.user_tables_dir()
TIMING_FIELDS = tuple(Timing.__dataclass_fields__)


def _number(v) -> bool:
    """A finite JSON number (not a bool, a string or NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _checked_calibration(cal, bad):
    """The stored calibration, or `bad(what)` raised where it could not be what hwnas-profile wrote:
    a, b finite numbers, slope a > 0, a known mode, finite factors / per-conversion cost. (Whether it
    predicts a positive latency for every architecture needs the space: LatencyModel checks that.)"""
    if cal is None:
        return None
    if not isinstance(cal, dict):
        raise bad("'calibration' is not an object")
    if cal.get("table_sum", "all") not in SUM_RULES:
        raise bad(f"calibration.table_sum is {cal.get('table_sum')!r}, not one of {', '.join(SUM_RULES)}")
    if "a" not in cal and "b" not in cal:
        return cal
    for key in ("a", "b"):
        if not _number(cal.get(key)):
            raise bad(f"calibration.{key} is {cal.get(key)!r}, not a finite number")
    if cal["a"] <= 0:
        raise bad(f"calibration.a is {cal['a']!r}: a slope <= 0 would invert or erase every latency difference")
    mode = cal.get("mode", "linear")
    if mode not in ("linear", "per_op", "layout"):
        raise bad(f"calibration.mode is {mode!r}, not linear, per_op or layout")
    factors = cal.get("factors") or {}
    if not isinstance(factors, dict) or not all(_number(f) and f >= 0 for f in factors.values()):
        raise bad(f"calibration.factors is {factors!r}, not an object of non-negative numbers")
    if mode == "layout" and not _number(cal.get("reorder_ms")):
        raise bad(f"calibration.reorder_ms is {cal.get('reorder_ms')!r}, not a finite number")
    for key in ("relu_ms", "add_ms"):  # later layout calibrations also price unfused ReLUs and Adds
        if key in cal and not _number(cal[key]):
            raise bad(f"calibration.{key} is {cal[key]!r}, not a finite number")
    return cal


class FingerprintMismatch(HwnasError):
    """A table was measured under other settings or on another machine."""


def table_dirs() -> list[Path]:
    """Where a table is looked up by name, first match wins: the user's tables, then the shipped ones."""
    from hwnas.userdirs import user_tables_dir

    return [user_tables_dir(), TABLE_DIR]


def table_path(device: str, out_dir: str | Path | None = None) -> Path:
    """out_dir/<device>.json; without out_dir the first existing one of table_dirs(), else the
    user's (where hwnas-profile writes it)."""
    if out_dir is not None:
        return Path(out_dir) / f"{device}.json"
    for d in table_dirs():
        if (d / f"{device}.json").is_file():
            return d / f"{device}.json"
    return table_dirs()[0] / f"{device}.json"


# Fingerprint keys added after tables were shipped: a table without one says nothing about it,
# so its absence is no difference (older tables keep loading and resuming without a warning).
LATER_KEYS = frozenset({"cpu_id", "cpu_isa"})


def fingerprint_diff(a: dict, b: dict) -> list[str]:
    """'key: a != b' for every key whose value differs (missing counts as None, except a LATER_KEYS
    key that one side lacks)."""
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not (k in LATER_KEYS and (k not in a or k not in b))]


class LatencyTable:
    def __init__(self, path: str | Path, device: str, fingerprint: dict, settings: dict | None = None):
        self.path = Path(path)
        self.device = device
        self.fingerprint = dict(fingerprint)
        self.settings = dict(settings or {})
        self.created_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.entries: dict[str, dict] = {}
        self.e2e: dict[str, dict] = {}
        self.calibration: dict | None = None
        self.validation: dict | None = None
        self.noise: dict | None = None  # measured noise level (hwnas/latency/verdict.py)
        self.verdict: dict | None = None  # good | usable | poor, and why (hwnas/latency/verdict.py)
        self.cost: dict = {}  # seconds and timed runs spent building it, summed over resumed sessions
        self.clock: dict | None = None  # the reference clock's architecture, level and drift (profiler.Clock)

    # --- lookups -----------------------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def median(self, key: str) -> float:
        return float(self.entries[key]["median_ms"])

    def measured_ms(self, arch: str) -> float:
        """An architecture's end-to-end latency: the mean of its two timings minutes apart where it was
        timed again (the validation architectures: half the noise of one timing), else its median."""
        e = self.e2e[str(arch)]
        return (e["median_ms"] + e["recheck_median_ms"]) / 2 if "recheck_median_ms" in e else float(e["median_ms"])

    def missing(self, specs) -> list[OpSpec]:
        """Distinct specs (first occurrence order) with no entry yet."""
        seen, out = set(), []
        for s in specs:
            if s.key not in self.entries and s.key not in seen:
                seen.add(s.key)
                out.append(s)
        return out

    # --- updates (each followed by save() by the profiler) --------------------------------
    def add(self, spec: OpSpec, timing: Timing, chain: Timing | None = None, copies: int = 1) -> None:
        """Store `timing` of the op alone and, when given, of `copies` of it back to back (marginal_ms)."""
        entry = {"op": spec.op, "c_in": spec.c_in, "c_out": spec.c_out, "h": spec.h, "w": spec.w,
                 "stride": spec.stride, "extra": dict(spec.extra), **timing.to_dict()}
        if chain is not None:
            entry.update(chain_copies=copies, chain_median_ms=chain.median_ms, chain_iqr_ms=chain.iqr_ms,
                         marginal_ms=max((chain.median_ms - timing.median_ms) / (copies - 1), 0.0))
        self.entries[spec.key] = entry

    def add_e2e(self, arch: str, timing: Timing) -> None:
        self.e2e[str(arch)] = timing.to_dict()

    def save(self) -> None:
        write_json_atomic(self.path, self.to_dict())

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "device": self.device, "created_utc": self.created_utc,
                "fingerprint": self.fingerprint, "settings": self.settings, "entries": self.entries,
                "e2e": self.e2e, "calibration": self.calibration, "validation": self.validation, "noise": self.noise,
                "verdict": self.verdict, "cost": self.cost, "clock": self.clock}

    # --- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, current_fingerprint: dict | None = None) -> "LatencyTable":
        """Read and validate a table; warns when `current_fingerprint` (this machine) differs."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"latency table {path} does not exist; run hwnas-profile to measure it")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a valid hwnas latency table (not JSON: corrupt or truncated, or another "
                            f"kind of file: {exc}); {FIX_HINT}") from None
        table = cls._from_dict(path, raw)
        if current_fingerprint is not None:
            diff = fingerprint_diff(table.fingerprint, current_fingerprint)
            if diff:
                warnings.warn(f"latency table {path} was measured under other settings or hardware than this "
                              f"machine's ({'; '.join(diff)}); its latencies describe that device", stacklevel=2)
        return table

    @classmethod
    def _from_dict(cls, path: Path, raw) -> "LatencyTable":
        def bad(what: str) -> DataError:
            return DataError(f"{path} is not a valid hwnas latency table (malformed: {what}); {FIX_HINT}")

        if not isinstance(raw, dict):
            raise bad("top level is not a JSON object")
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"latency table {path} has schema_version {version!r}; this hwnas reads version "
                            f"{SCHEMA_VERSION}; re-run hwnas-profile to measure it again")
        for key, typ in (("device", str), ("fingerprint", dict), ("entries", dict)):
            if not isinstance(raw.get(key), typ):
                raise bad(f"'{key}' is missing or not a {typ.__name__}")
        table = cls(path, raw["device"], raw["fingerprint"], raw.get("settings") or {})
        table.created_utc = raw.get("created_utc", table.created_utc)
        for section in ("entries", "e2e"):
            rows = raw.get(section) or {}
            if not isinstance(rows, dict):
                raise bad(f"'{section}' is not an object")
            for key, entry in rows.items():
                if not isinstance(entry, dict):
                    raise bad(f"{section}[{key!r}] is not an object")
                for f in TIMING_FIELDS + tuple(k for k in ("marginal_ms", "chain_median_ms") if k in entry):
                    v = entry.get(f)
                    if not _number(v) or v < 0:
                        raise bad(f"{section}[{key!r}].{f} is {v!r}, not a non-negative number")
                if entry["median_ms"] <= 0:  # a timed run never takes no time: a zero median was not measured
                    raise bad(f"{section}[{key!r}].median_ms is {entry['median_ms']!r}, not a positive number")
            getattr(table, section).update(rows)
        table.calibration = _checked_calibration(raw.get("calibration"), bad)
        for key in ("validation", "noise", "verdict"):
            if raw.get(key) is not None and not isinstance(raw.get(key), dict):
                raise bad(f"'{key}' is not an object")
        table.validation = raw.get("validation")
        table.noise = raw.get("noise")
        table.verdict = raw.get("verdict")
        table.cost = raw.get("cost") or {}
        table.clock = raw.get("clock") if isinstance(raw.get("clock"), dict) else None
        return table

    @classmethod
    def open(cls, path: str | Path, device: str, fingerprint: dict, settings: dict | None = None,
             overwrite: bool = False) -> "LatencyTable":
        """The table to profile into: the existing one (resume) when its fingerprint matches,
        a fresh one when there is none or `overwrite`; a mismatch is an error (never mixed)."""
        path = Path(path)
        if path.exists() and not overwrite:
            table = cls.load(path)
            diff = fingerprint_diff(table.fingerprint, fingerprint)
            if diff:
                raise FingerprintMismatch(
                    f"latency table {path} was measured with other settings or hardware ({'; '.join(diff)}); "
                    f"its entries cannot be mixed with new ones: pick another device=<name> or pass overwrite=true "
                    f"to measure it afresh")
            table.settings = dict(settings or table.settings)
            return table
        return cls(path, device, fingerprint, settings)
