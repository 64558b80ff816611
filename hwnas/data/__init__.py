"""Readers of the public benchmark files (never committed; see README 'Data')."""
from hwnas.data.paths import DATA_ENV, resolve_data_dir, data_file  # noqa: F401
