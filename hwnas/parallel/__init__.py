"""Evaluations in parallel on Ray (`evaluator.workers > 1`): the actors, the fault handling and
the ask/tell loop that keeps them busy. Ray is an optional extra, imported only here."""
