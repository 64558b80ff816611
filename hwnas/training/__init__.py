"""Real training of searched networks: the proxy schedule (loop.py) and the checkpoints a
search keeps of every trained architecture (checkpoints.py)."""
