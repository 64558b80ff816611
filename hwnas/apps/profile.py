"""`hwnas-profile`: measure a device's latency table (Hydra app, hwnas/conf/profile/profile.yaml).

Times every distinct operation of the space with the chosen runner, then whole architectures
end to end to calibrate and validate the table. Resumable: rerun the same command after an
interruption and only what is missing is measured. The table and its device config go to the
user folder (hwnas/userdirs.py; HWNAS_HOME overrides), never into the installed package.
"""
from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from hwnas.apps.common import CONF_DIR, check_overrides
from hwnas.errors import ConfigError, HwnasError, exit_on_user_error
from hwnas.profiling.config import ProfileConfig, store_profile_schemas
from hwnas.spaces.base import require_profilable

PROFILE_CONF = CONF_DIR / "profile"
GROUPS = ("runner",)
log = logging.getLogger("hwnas.profile")
store_profile_schemas()


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)|@.*$|\d+-core processor", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40]


def default_device_name(cfg: ProfileConfig, runner=None) -> str:
    """A name that says what the table is: where, which runtime, threads, batch (and precision).

    runner=remote names the agent's device (its board, else its CPU, from the agent's
    fingerprint), never this machine."""
    from hwnas import machine

    r = cfg.runner
    if r.name == "ort_cpu":
        name = f"cpu-ort-{machine.cpu_slug()}-t{cfg.threads}-b{cfg.batch}"
    elif r.name == "remote":
        agent = (runner.fingerprint().get("agent") if runner is not None else None) or {}
        where = _slug(str(agent.get("board") or "")) or _slug(str(agent.get("cpu") or ""))
        if not where:
            raise ConfigError("runner=remote: the agent does not name its device (no board or cpu in its "
                              "fingerprint); pass device=<name> for the table")
        name = f"remote-{where}-t{cfg.threads}-b{cfg.batch}"
    else:
        gpu = re.sub(r"[^a-z0-9]+", "-", (machine.gpu_name() or "gpu").lower()).strip("-")
        name = f"{r.name.replace('_', '')}-{gpu}-b{cfg.batch}"
    if r.precision != "fp32":
        name += f"-{r.precision}"
    from hwnas.config import table_suffix

    return name + table_suffix(cfg.space, cfg.dataset, cfg.width_mult)


def make_runner(cfg: ProfileConfig):
    from hwnas.profiling.runners import RUNNERS, TimingSettings

    for key in ("threads", "batch", "repeats", "e2e_repeats"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}={getattr(cfg, key)} must be >= 1")
    if cfg.warmup < 0:
        raise ConfigError(f"warmup={cfg.warmup} must be >= 0")
    settings = TimingSettings(warmup=cfg.warmup, repeats=cfg.repeats, intra_op_threads=cfg.threads,
                              inter_op_threads=cfg.runner.inter_op_threads,
                              graph_optimization=cfg.runner.graph_optimization, batch=cfg.batch,
                              precision=cfg.runner.precision)
    runner = RUNNERS.get(cfg.runner.name)(settings, seed=cfg.seed, **cfg.runner.options)
    ok, why = runner.available()
    if not ok:
        raise HwnasError(f"runner {cfg.runner.name} cannot run here: {why}")
    return runner


def check_device_name(name: str) -> None:
    """Refuse a table name that is already a shipped device (hwnas/conf/device/) other than a profiled table.

    `hwnas-search device=<name>` would then search that device (e.g. the public raspi4 column),
    not the table measured here."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"device={name!r}: use letters, digits, '-', '_' and '.' (it names a file)")
    path = CONF_DIR / "device" / f"{name}.yaml"
    if not path.is_file():
        return
    try:
        kind = OmegaConf.load(path).get("kind")
    except Exception:  # unreadable: treat it as taken
        kind = None
    if kind != "profiled":
        raise ConfigError(f"device name {name!r} is a public benchmark device in hwnas/conf/device/; "
                          f"choose another name for your table")


def register_device(name: str) -> Path | None:
    """<user conf dir>/device/<name>.yaml for a table in the user's tables, so that
    `hwnas-search device=<name>` finds it (the apps put the user conf dir on Hydra's search path)."""
    from hwnas.io import write_text_atomic
    from hwnas.userdirs import user_device_conf_dir

    path = user_device_conf_dir() / "device" / f"{name}.yaml"
    if path.exists() or (CONF_DIR / "device" / f"{name}.yaml").exists():
        return None
    write_text_atomic(path, f"# Latency table {name}.json measured by hwnas-profile (in the user's tables)\n"
                            f"defaults:\n  - /schema/device/base@_here_\n  - _self_\n"
                            f"name: {name}\nkind: profiled\npath: null  # found by name in the user's tables\n"
                            f"default_latency_quantile: 0.3  # the budget unless given\n")
    return path


def run_recalibration(cfg: ProfileConfig):
    """recalibrate=true: refit an existing table's calibration from its stored timings (no runner)."""
    from hwnas.latency.table import LatencyTable, table_path
    from hwnas.profiling.profiler import recalibrate
    from hwnas.spaces import SPACES

    if not cfg.device:
        raise ConfigError("recalibrate=true needs device=<table name> (a table in the user's tables, latency_tables/ or out_dir)")
    space = require_profilable(SPACES.get(cfg.space)(), "hwnas-profile")
    path = table_path(cfg.device, cfg.out_dir)
    table = LatencyTable.load(path)
    for key, want in (("space", cfg.space), ("dataset", cfg.dataset)):
        if table.fingerprint.get(key) not in (None, want):
            raise ConfigError(f"latency table {path} was profiled for {key} {table.fingerprint[key]!r}, not {want!r}")
    plot = path.with_suffix(".png") if cfg.plot else None
    report = recalibrate(space, cfg.dataset, table, cfg.calibrate, cfg.validate, cfg.seed, plot, cfg.calibration)
    report.extra["device"] = cfg.device
    report.extra["overhead_probes"] = sum(e["op"] == "noop" for e in table.entries.values())
    return report


def run_profile(cfg: ProfileConfig, space=None):
    """The profile `cfg` asks for; `space` (default: cfg.space at its default width) is the space
    object to profile, e.g. a search's own at its width."""
    from hwnas.latency.model import CALIBRATIONS
    from hwnas.latency.table import LatencyTable, table_path
    from hwnas.profiling.profiler import profile
    from hwnas.spaces import SPACES
    from hwnas.userdirs import user_tables_dir

    if cfg.threads == 0:  # every core: the table's name and fingerprint carry the number
        import os
        from dataclasses import replace

        cfg = replace(cfg, threads=os.cpu_count() or 1)
    if cfg.calibration not in ("auto", *CALIBRATIONS):
        raise ConfigError(f"calibration={cfg.calibration!r}: use auto or one of {', '.join(CALIBRATIONS)}")
    if cfg.recalibrate:
        return run_recalibration(cfg)
    if cfg.device:
        check_device_name(cfg.device)  # before any runner starts
    if space is None:
        cls = SPACES.get(cfg.space)
        if cfg.width_mult is not None and "width_mult" not in cls.params:
            raise ConfigError(f"width_mult={cfg.width_mult}: space {cfg.space} has no width (spaces with one: mbv3)")
        from hwnas.config import SpaceConfig

        space = cls.from_config(SpaceConfig(name=cfg.space, **({"width_mult": cfg.width_mult} if cfg.width_mult else {}),
                                            **cls.defaults_for(cfg.dataset)))
    space = require_profilable(space, "hwnas-profile")
    shape = list(space.input_shape(cfg.dataset))  # an unknown dataset fails here, before any timing
    runner = make_runner(cfg)
    try:
        device = cfg.device or default_device_name(cfg, runner)
        check_device_name(device)
    except BaseException:
        runner.close()
        raise
    path = table_path(device, cfg.out_dir or user_tables_dir())  # never into the package
    fingerprint = {**runner.fingerprint(), "space": cfg.space, "dataset": cfg.dataset, "input_shape": shape,
                   "space_params": space.param_values()}
    settings = {"warmup": cfg.warmup, "repeats": cfg.repeats, "e2e_repeats": cfg.e2e_repeats, "seed": cfg.seed,
                "calibrate": cfg.calibrate, "validate": cfg.validate, "clock": cfg.clock}
    table = LatencyTable.open(path, device, fingerprint, settings, overwrite=cfg.overwrite)
    plot = path.with_suffix(".png") if cfg.plot else None
    try:
        report = profile(space, cfg.dataset, runner, table, cfg.calibrate, cfg.validate, cfg.e2e_repeats, cfg.seed,
                         cfg.progress, plot, cfg.calibration, clock=cfg.clock)
    finally:
        runner.close()
    if Path(cfg.out_dir or user_tables_dir()).resolve() == user_tables_dir().resolve():
        report.extra["device_config"] = register_device(device)
    report.extra["device"] = device
    report.extra["overhead_probes"] = sum(e["op"] == "noop" for e in table.entries.values())
    return report


def _fmt(fid: dict | None) -> str:
    if not fid:
        return "n/a"
    return (f"Kendall tau {fid['kendall_tau']:.3f}, Spearman rho {fid['spearman_rho']:.3f}, MAPE {fid['mape_pct']:.1f}%, "
            f"within 5% {100 * fid['within_5pct']:.0f}%, within 10% {100 * fid['within_10pct']:.0f}%")


@exit_on_user_error
def _run(cfg: DictConfig) -> None:
    typed: ProfileConfig = OmegaConf.to_object(cfg)
    from hwnas.latency.model import calibration_terms

    rep = run_profile(typed)
    device = rep.extra["device"]
    probes = rep.extra["overhead_probes"]
    log.info("latency table %s: %d operations + %d per-call overhead probes (%d measured now, %d whole "
             "architectures timed end to end now, %d timed runs) in %.1f s", rep.path, rep.n_ops - probes, probes,
             rep.ops_measured, rep.e2e_measured, rep.timed_runs, rep.seconds)
    if rep.calibration and "a" in rep.calibration:
        cal = rep.calibration
        log.info("calibration (%s) on %d architectures: measured = %.4f * table sum %+.4f ms%s",
                 cal.get("selected") or cal.get("mode", "linear"),
                 cal["n"], cal["a"], cal["b"],
                 calibration_terms(cal) + (f" ({cal['fallback']})" if cal.get("fallback") else ""))
    if rep.validation:
        log.info("validation on %d other architectures, table sum: %s", rep.validation["n"], _fmt(rep.validation["raw"]))
        log.info("validation on %d other architectures, calibrated: %s", rep.validation["n"],
                 _fmt(rep.validation["calibrated"]))
        if rep.validation.get("calibrated_linear"):
            log.info("validation on %d other architectures, linear calibration: %s", rep.validation["n"],
                     _fmt(rep.validation["calibrated_linear"]))
    if rep.calibration and rep.calibration.get("selection"):
        log.info("calibration kept: %s", rep.calibration["selection"])
    from hwnas.latency.table import LatencyTable
    from hwnas.latency.verdict import table_verdict, verdict_line

    v = table_verdict(LatencyTable.load(rep.path))
    (log.warning if v["level"] == "poor" else log.info)("%s", verdict_line(v))
    if typed.plot and rep.validation:
        log.info("plot: %s", rep.path.with_suffix(".png"))
    if rep.extra.get("device_config"):
        log.info("registered device config %s", rep.extra["device_config"])
    from hwnas.latency.table import table_path
    from hwnas.userdirs import user_device_conf_dir

    known = any((d / "device" / f"{device}.yaml").exists() for d in (CONF_DIR, user_device_conf_dir()))
    if known and table_path(device).resolve() == rep.path.resolve():
        log.info("search with it: hwnas-search device=%s", device)
    else:
        log.info("search with it: hwnas-search device=profiled device.name=%s device.path=%s", device, rep.path)


@hydra.main(config_path="pkg://hwnas.conf.profile", config_name="profile", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    _run(cfg)


def main() -> None:
    check_overrides(sys.argv[1:], GROUPS, "profile", conf_module="hwnas.conf.profile", conf_dir=PROFILE_CONF)
    _hydra_main()


if __name__ == "__main__":
    main()
