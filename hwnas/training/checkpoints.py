"""The trained architectures of a search, kept in its run directory (checkpoints/<key>.pt).

A checkpoint holds the weights, the validation accuracy and what produced them (schedule,
seed, data digest, network geometry). It is written atomically before the query is recorded
in history.csv, so a search killed at any point never retrains an architecture it finished,
and `hwnas-export` ships exactly the weights the search measured.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from hwnas.errors import DataError
from hwnas.io import atomic_path, clean_stale_temps

FOLDER = "checkpoints"


def checkpoint_name(arch_text: str) -> str:
    return hashlib.sha256(arch_text.encode()).hexdigest()[:20] + ".pt"


class CheckpointStore:
    def __init__(self, run_dir: str | Path):
        self.folder = Path(run_dir) / FOLDER
        if self.folder.is_dir():
            clean_stale_temps(self.folder)  # a checkpoint half-written when the search was killed

    def path(self, arch_text: str) -> Path:
        return self.folder / checkpoint_name(arch_text)

    def save(self, arch_text: str, state_dict: dict, meta: dict[str, Any]) -> Path:
        path = self.path(arch_text)
        with atomic_path(path) as tmp:
            torch.save({"arch": arch_text, "meta": meta, "state_dict": state_dict}, tmp)
        return path

    def load(self, arch_text: str, weights: bool = True) -> dict | None:
        """The checkpoint of `arch_text`, or None when there is none. A corrupt one is a DataError."""
        path = self.path(arch_text)
        if not path.is_file():
            return None
        return read_checkpoint(path, arch_text)


def read_checkpoint(path: Path, arch_text: str | None = None) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a torn or foreign file
        raise DataError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it to "
                        f"retrain that architecture") from None
    if not isinstance(ckpt, dict) or not {"arch", "meta", "state_dict"} <= set(ckpt):
        raise DataError(f"checkpoint {path} is not an hwnas checkpoint; delete it to retrain that architecture")
    if arch_text is not None and ckpt["arch"] != arch_text:
        raise DataError(f"checkpoint {path} holds {ckpt['arch']!r}, not {arch_text!r}; delete it")
    return ckpt
