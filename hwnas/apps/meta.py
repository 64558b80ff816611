"""`hwnas-meta`: meta-trained models built from the data directory (issue 15).

    hwnas-meta reference [--out my_board.csv]        the architectures a few-shot device must measure
    hwnas-meta train [--exclude pixel3 ...]          meta-train (or find cached) the latency predictor
    hwnas-meta table --measured my_board.csv --name my_board
                                                     predict the whole space from the measured CSV, write
                                                     the table to the user's tables and register
                                                     `device=my_board` for hwnas-search
    hwnas-meta train-generator --task cifar100 --device pixel3
                                                     meta-train (or find cached) searcher=metad2a's models
                                                     for that target: never from its task or its device

Settings of the meta-training (hwnas/config.py, MetaConfig) are changed with `--set key=value`
(e.g. `--set steps=200`); the same settings as `device.meta.*` of `device=fewshot` share its cache.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from hwnas.config import MetaConfig
from hwnas.errors import ConfigError, exit_on_user_error


def _meta(sets: list[str], seed: int | None, exclude: list[str]) -> MetaConfig:
    meta = MetaConfig()
    types = {f.name: type(getattr(meta, f.name)) for f in fields(MetaConfig) if f.name != "exclude"}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ConfigError(f"--set {item!r}: expected key=value with key one of {', '.join(types)}")
        try:
            setattr(meta, key, types[key](value))
        except ValueError:
            raise ConfigError(f"--set {item!r}: {value!r} is not a {types[key].__name__}") from None
    if seed is not None:
        meta.seed = seed
    meta.exclude = list(exclude)
    return meta


def _space(data_dir):
    from hwnas.spaces.nb201 import NB201Space

    return NB201Space(data_dir=data_dir)


def cmd_reference(a) -> None:
    import pandas as pd

    from hwnas.io import write_csv_atomic
    from hwnas.latency.fewshot import reference_set

    refs = reference_set(_space(a.data_dir), a.n_reference)
    df = pd.DataFrame({"index": [i for i, _ in refs], "arch": [s for _, s in refs], "latency_ms": [""] * len(refs)})
    if a.out:
        write_csv_atomic(df, a.out, index=False)
        print(f"wrote the {len(refs)} reference architectures to {a.out}: fill in latency_ms (ms, measured on the "
              f"device), add any other measured architectures as rows, then run hwnas-meta table")
    else:
        df.to_csv(sys.stdout, index=False)


def cmd_train(a) -> None:
    from hwnas.latency.fewshot import excluded_devices, meta_model

    meta = _meta(a.set, a.seed, a.exclude)
    exclude = excluded_devices(a.data_dir, None, meta.exclude)
    state, path, built = meta_model(a.data_dir, meta, exclude)
    print(f"{'trained' if built else 'cached'}: {path}")
    print(f"sources ({len(state['sources'])}): {', '.join(state['sources'])}")
    print(f"excluded: {', '.join(state.get('excluded', [])) or 'none'}")


def cmd_table(a) -> None:
    from pathlib import Path

    import pandas as pd

    from hwnas.apps.profile import check_device_name
    from hwnas.io import write_csv_atomic, write_text_atomic
    from hwnas.latency.fewshot import fewshot_latency
    from hwnas.userdirs import user_device_conf_dir, user_tables_dir

    check_device_name(a.name)
    space = _space(a.data_dir)
    meta = _meta(a.set, a.seed, a.exclude)
    latency, idx, state, cache = fewshot_latency(space, a.name, Path(a.measured).expanduser(), meta, a.data_dir)
    measured = pd.Series(False, index=range(len(latency)))
    measured[idx] = True
    table = user_tables_dir() / f"{a.name}.csv"
    df = pd.DataFrame({"index": range(len(latency)), "arch": [str(x) for x in space.enumerate()],
                       "latency_ms": latency, "measured": measured.to_numpy()})
    write_csv_atomic(df, table, index=False)
    conf = user_device_conf_dir() / "device" / f"{a.name}.yaml"
    write_text_atomic(conf, f"# Few-shot latency table of {a.name} (hwnas-meta table, from {len(idx)} measured "
                            f"architectures in {Path(a.measured).resolve()};\n# meta-trained on: "
                            f"{', '.join(state['sources'])})\n"
                            f"defaults:\n  - /schema/device/base@_here_\n  - _self_\n"
                            f"name: {a.name}\nkind: csv\npath: {table}\n"
                            f"default_latency_quantile: 0.3  # the budget unless given\n")
    print(f"wrote {table} ({len(latency)} architectures, {len(idx)} measured) and {conf}")
    print(f"meta-trained on {len(state['sources'])} devices, excluded: {', '.join(state.get('excluded', [])) or 'none'}"
          f" (model: {cache})")
    print(f"search it: hwnas-search device={a.name}")


def _d2a_settings(sets: list[str]):
    """D2ASettings from `--set key=value` (keys: its fields, as searcher.meta_<key> of searcher=metad2a)."""
    from hwnas.meta.metad2a import D2ASettings

    default = D2ASettings()
    types = {f.name: type(getattr(default, f.name)) for f in fields(D2ASettings)}
    values = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ConfigError(f"--set {item!r}: expected key=value with key one of {', '.join(types)}")
        try:
            values[key] = types[key](value)
        except ValueError:
            raise ConfigError(f"--set {item!r}: {value!r} is not a {types[key].__name__}") from None
    return D2ASettings(**values)


def cmd_train_generator(a) -> None:
    from hwnas.data.nb201 import latency_devices
    from hwnas.meta.transfer import benchmark_tasks, d2a_model, split_sources

    # A target named here must be a benchmark one: a typo would leave the real target in the sources.
    for what, given, valid in (("task", a.task, benchmark_tasks()), ("device", a.device, latency_devices(a.data_dir))):
        if given is not None and given not in valid:
            raise ConfigError(f"--{what} {given!r}: not a benchmark {what} (valid: {', '.join(valid)}); omit "
                              f"--{what} for a target outside the benchmark (then none is excluded)")
    settings = _d2a_settings(a.set)
    split = split_sources(a.data_dir, a.task, a.device, a.exclude_task, a.exclude_device)
    state, path, built = d2a_model(a.data_dir, settings, a.seed, a.task, a.device, a.exclude_task,
                                   a.exclude_device, progress=not a.quiet)
    print(f"{'trained' if built else 'cached'}: {path}")
    print(f"source tasks: {', '.join(state['tasks'])}; excluded: {', '.join(split['excluded_tasks']) or 'none'}")
    print(f"source devices ({len(state['devices'])}): {', '.join(state['devices'])}; "
          f"excluded: {', '.join(split['excluded_devices']) or 'none'}")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hwnas-meta", description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the public benchmark files (default: $HWNAS_DATA_DIR)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference", help="list the reference architectures to measure on a new device")
    r.add_argument("--out", help="CSV to write (index, arch, empty latency_ms); default: print it")
    r.add_argument("--n-reference", type=int, default=MetaConfig.n_reference)
    for name, helptext in (("train", "meta-train the few-shot latency predictor (cached)"),
                           ("table", "a latency table of the whole space from a device's measured CSV")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--exclude", nargs="*", default=[], help="benchmark devices not to learn from")
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a meta-training setting")
        if name == "table":
            p.add_argument("--measured", required=True, help="CSV: index or arch, latency_ms (the references + any)")
            p.add_argument("--name", required=True, help="the device's name (device=<name> in hwnas-search)")
    g = sub.add_parser("train-generator", help="meta-train searcher=metad2a's predictor and generator (cached)")
    g.add_argument("--task", default=None, help="the target task, never learnt from (e.g. cifar100)")
    g.add_argument("--device", default=None, help="the target device, never learnt from (e.g. pixel3)")
    g.add_argument("--exclude-task", nargs="*", default=[], help="more benchmark tasks not to learn from")
    g.add_argument("--exclude-device", nargs="*", default=[], help="more benchmark devices not to learn from")
    g.add_argument("--seed", type=int, default=0, help="meta-training seed (searcher.meta_seed)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a meta-training setting (hidden, steps, episodes, ...: searcher.meta_<key>)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    from hwnas.data.paths import resolve_data_dir

    a.data_dir = resolve_data_dir(a.data_dir)
    {"reference": cmd_reference, "train": cmd_train, "table": cmd_table,
     "train-generator": cmd_train_generator}[a.cmd](a)


if __name__ == "__main__":
    main()
