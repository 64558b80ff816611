"""Meta-learning across the public benchmark's devices (and, later, tasks).

  cache.py      where meta-trained models live (user cache dir), their key, atomic save/load
  fewshot.py    HELP-style latency predictor: a hardware embedding from a fixed reference set
                of architectures + first-order MAML, adapted on a new device's few measurements
  metad2a.py    MetaD2A-style set-conditioned predictor and conditional generator (searcher=metad2a)
  transfer.py   what metad2a learns from: the benchmark's tasks and devices minus the target's; its cache

A meta-trained model never learns from the target: the caller names the excluded devices (and
tasks) and the model records the sources it used.
"""
