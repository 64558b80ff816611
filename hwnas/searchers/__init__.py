"""Searchers behind one ask/tell protocol, registered by name (`searcher=<name>`).

A searcher's module is imported on first use (SEARCHERS.get), so the apps start without torch;
its typed config lives in hwnas/searchers/configs.py (torch-free) and is stored here as Hydra's
schema `schema/searcher/<name>`. Adding a searcher: its module, its config class in configs.py,
one line in SEARCHER_MODULES and one hwnas/conf/searcher/<name>.yaml.
"""
from hwnas.config import store_searcher_schema
from hwnas.searchers import configs

# name -> module that registers it (imported by SEARCHERS.get), and its config class
SEARCHER_MODULES = {
    "agnet": "hwnas.searchers.agnet",
    "dash": "hwnas.searchers.dash",
    "ganas": "hwnas.searchers.ganas",
    "lamoo": "hwnas.searchers.lamoo",
    "lanas": "hwnas.searchers.lanas",
    "metad2a": "hwnas.searchers.metad2a",
    "mobo": "hwnas.searchers.mobo",
    "nsga2": "hwnas.searchers.nsga",
    "nsga3": "hwnas.searchers.nsga",
    "random": "hwnas.searchers.random_search",
    "regularized_evolution": "hwnas.searchers.regularized_evolution",
}
SEARCHER_CONFIGS = {
    "agnet": configs.AGNetConfig,
    "dash": configs.DashConfig,
    "ganas": configs.GANASConfig,
    "lamoo": configs.LaMOOConfig,
    "lanas": configs.LaNASConfig,
    "metad2a": configs.MetaD2AConfig,
    "mobo": configs.MOBOConfig,
    "nsga2": configs.NSGA2Config,
    "nsga3": configs.NSGA3Config,
    "random": configs.RandomConfig,
    "regularized_evolution": configs.RegularizedEvolutionConfig,
}
for _name, _config in SEARCHER_CONFIGS.items():
    store_searcher_schema(_name, _config)


def __getattr__(name: str):
    # The registry and the protocol pull in numpy/problem/latency (torch): only when asked for.
    if name in ("SEARCHERS", "Searcher", "register_searcher"):
        from hwnas.searchers import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
