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
PARTIAL = "partial"  # checkpoints/partial/: trainings cut off by a kill, kept at their last epoch


def checkpoint_name(arch_text: str) -> str:
    return hashlib.sha256(arch_text.encode()).hexdigest()[:20] + ".pt"


class CheckpointStore:
    def __init__(self, run_dir: str | Path):
        self.folder = Path(run_dir) / FOLDER
        for folder in (self.folder, self.folder / PARTIAL):
            if folder.is_dir():
                clean_stale_temps(folder)  # a checkpoint half-written when the search was killed

    def path(self, arch_text: str) -> Path:
        return self.folder / checkpoint_name(arch_text)

    def save(self, arch_text: str, state_dict: dict, meta: dict[str, Any]) -> Path:
        path = self.path(arch_text)
        with atomic_path(path) as tmp:
            torch.save({"arch": arch_text, "meta": meta, "state_dict": state_dict}, tmp)
        return path

    # --- a training in progress: saved after each epoch, dropped once it is done -------------
    def partial_path(self, arch_text: str) -> Path:
        return self.folder / PARTIAL / checkpoint_name(arch_text)

    def save_partial(self, arch_text: str, state: dict, identity: dict) -> None:
        path = self.partial_path(arch_text)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({"arch": arch_text, "identity": identity, "state": state}, tmp)

    def load_partial(self, arch_text: str, identity: dict) -> dict | None:
        """Where a cut-off training of `arch_text` stopped, if it was made the same way; a torn or
        foreign file is ignored (that training starts over)."""
        path = self.partial_path(arch_text)
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            return None
        ok = isinstance(saved, dict) and saved.get("arch") == arch_text and saved.get("identity") == identity
        return saved["state"] if ok else None

    def drop_partial(self, arch_text: str) -> None:
        self.partial_path(arch_text).unlink(missing_ok=True)

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
