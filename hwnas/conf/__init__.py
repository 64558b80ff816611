"""Hydra configs of the three apps (package data: `pkg://hwnas.conf`)."""
