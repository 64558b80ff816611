"""Readers of the public benchmark files (never committed; see README 'Data')."""
from hwnas.data.paths import DATA_ENV, data_file, resolve_data_dir  # noqa: F401
