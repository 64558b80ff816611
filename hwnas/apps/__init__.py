"""Hydra entry points (console scripts)."""
