"""Meta-learning across the public benchmark's devices (and, later, tasks).

  cache.py      where meta-trained models live (user cache dir), their key, atomic save/load
  fewshot.py    HELP-style latency predictor: a hardware embedding from a fixed reference set
                of architectures + first-order MAML, adapted on a new device's few measurements

A meta-trained model never learns from the target: the caller names the excluded devices and
the model records the sources it used. `searcher=metad2a` (issue 15, item 2) belongs here too.
"""
