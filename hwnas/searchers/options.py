"""Searcher options, typed and bounded in one place: the config dataclass's field metadata.

A searcher's config declares each option with `bounded(...)` (numbers) or `choice(...)`
(strings); `validate_options(cfg)` checks every field against its annotated type and its
metadata and raises ConfigError naming `searcher.<key>`, the rule and the value. The base
Searcher calls it once, before any work, so no searcher carries its own checks.

A bound may name another option (`max="population_size"`): the rule is then read from the
same config.
"""
from __future__ import annotations

import math
import numbers
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hwnas.errors import ConfigError

Bound = float | int | str | None  # a number, or the name of another option of the same config


@dataclass(frozen=True)
class Rule:
    min: Bound = None
    max: Bound = None
    min_open: bool = False  # min itself excluded
    max_open: bool = False
    choices: tuple[str, ...] | None = None


def bounded(default: Any, min: Bound = None, max: Bound = None, *, min_open: bool = False,
            max_open: bool = False) -> Any:
    """A numeric option's dataclass field: `default`, allowed in [min, max] (open ends optional)."""
    return field(default=default, metadata={"rule": Rule(min, max, min_open, max_open)})


def choice(default: str, *choices: str) -> Any:
    """A string option's dataclass field that must be one of `choices` (default first among them)."""
    return field(default=default, metadata={"rule": Rule(choices=tuple(choices))})


def _bound(cfg: Any, b: Bound) -> tuple[float | None, str]:
    """(value, how to print it) of a bound."""
    if isinstance(b, str):
        v = getattr(cfg, b)
        return v, f"searcher.{b} ({v!r})"
    return b, "" if b is None else f"{b:g}"


def _check(cfg: Any, key: str, kind: Any, rule: Rule | None) -> None:
    v = getattr(cfg, key)
    rule = rule or Rule()
    if kind is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"searcher.{key} must be true or false, got {v!r}")
        return
    if kind is str:
        if rule.choices is not None and v not in rule.choices:
            raise ConfigError(f"searcher.{key} must be one of {', '.join(rule.choices)}, got {v!r}")
        if not isinstance(v, str):
            raise ConfigError(f"searcher.{key} must be a string, got {v!r}")
        return
    if kind not in (int, float):
        return  # not a user-set scalar (none today)
    lo, lo_s = _bound(cfg, rule.min)
    hi, hi_s = _bound(cfg, rule.max)
    is_int = kind is int
    ok = isinstance(v, numbers.Integral if is_int else numbers.Real) and not isinstance(v, bool)
    ok = ok and (is_int or math.isfinite(v))
    if ok and lo is not None:
        ok = v > lo if rule.min_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if rule.max_open else v <= hi
    if ok:
        return
    if lo is not None and hi is not None:
        want = f"in {'(' if rule.min_open else '['}{lo_s}, {hi_s}{')' if rule.max_open else ']'}"
    elif lo is not None:
        want = f"{'>' if rule.min_open else '>='} {lo_s}"
    elif hi is not None:
        want = f"{'<' if rule.max_open else '<='} {hi_s}"
    else:
        want = ""
    kind_s = "an integer" if is_int else ("" if want else "a finite number")
    raise ConfigError(f"searcher.{key} must be {' '.join(w for w in (kind_s, want) if w)}, got {v!r}")


def validate_options(cfg: Any) -> None:
    """ConfigError on the first option of a searcher config that breaks its type or rule."""
    if not is_dataclass(cfg):
        return
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        if f.name == "name":
            continue
        _check(cfg, f.name, hints.get(f.name), f.metadata.get("rule"))
