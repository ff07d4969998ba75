"""`mcl_nf_mod`: 003's "Ours (mod)" (Table 1): the modular meta-continual neural field of ``mcl_nf`` with
λ = 0, so the FIM loss is plain MSE (every weight w_j = 1, 003 Eq. 3) in the inner loop, the meta-loss and
at test time. Every other setting and default is ``mcl_nf``'s (inherited), so a table row of the two
differs only in the Fisher weighting; λ is fixed here, and ``mcl_nf`` is where it is swept.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.methods.mcl_nf import MCLNF, MCLNFParams
from trainables.params import knob


@dataclass(frozen=True)
class MCLNFModParams(MCLNFParams):
    lam: float = knob(0.0, "λ = 0: plain MSE, 003's 'Ours (mod)' (sweep λ with mcl_nf)", choices=(0.0,))


class MCLNFMod(MCLNF):
    name = "mcl_nf_mod"
    Params = MCLNFModParams
