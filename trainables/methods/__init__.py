"""Registered methods, by name: the file name, the registry name and the name in spaces are the same."""

from __future__ import annotations

from trainables.methods.agem import AGEM
from trainables.methods.base import Method, TrainParams
from trainables.methods.emcl import EMCL
from trainables.methods.er import ER
from trainables.methods.ewc import EWC
from trainables.methods.finetune import Finetune
from trainables.methods.ftml import FTML
from trainables.methods.gem import GEM
from trainables.methods.lamaml import LaMAML
from trainables.methods.maml_cl import MAMLCL
from trainables.methods.mer import MER
from trainables.methods.oml import OML
from trainables.methods.replay import Replay
from trainables.methods.trust_region import TrustRegion
from trainables.methods.vrmcl import VRMCL

METHODS: dict[str, type[Method]] = {m.name: m for m in (
    Finetune, EWC, Replay, TrustRegion, ER, AGEM, GEM, MER, FTML, VRMCL, EMCL, LaMAML, OML, MAMLCL)}


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method '{name}'; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "TrainParams", "get_method"]
