"""What enters the residual stream besides the token embedding: a hash embedding of token pairs, and the
previous token smeared into the current one."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# odd multipliers that spread (previous, current) token pairs over the int32 range before the modulo
BIGRAM_MULTIPLIERS = (36313, 27191)


def bigram_hash(tokens: Tensor, table_size: int) -> Tensor:
    """For each position, a row of the bigram table chosen by (previous token, token) (record 62): row
    (36313 * t xor 27191 * previous) mod (table_size - 1), and the reserved last row for the first position
    (which also stands in for the second position's previous token). The pair straddling two documents is
    hashed like any other, as the record does."""
    reserved = table_size - 1
    x = tokens.to(torch.int32).clone()
    x[0] = reserved  # so the second position hashes (reserved, token), as the record's does
    current, previous = BIGRAM_MULTIPLIERS
    # int32 products wrap around as the record's do; the xor of two wrapped products may be negative, and
    # torch's % then takes the sign of the divisor, as Python's does
    return torch.cat([x[:1], torch.bitwise_xor(current * x[1:], previous * x[:-1]) % reserved])


class Smear(nn.Module):
    """Each token embedding gains lambda * sigmoid(w . x[:k]) times the previous token's embedding (record 34):
    a cheap stand-in for the heads that learn to look one token back. Both lambda and w start at zero."""

    def __init__(self, gate_dims: int) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(1, gate_dims))
        self.strength = nn.Parameter(torch.zeros(()))  # lambda

    def forward(self, x: Tensor) -> Tensor:  # x: (T, model_dim)
        gate = self.strength * torch.sigmoid(nn.functional.linear(x[1:, : self.gate.size(-1)], self.gate))
        return torch.cat([x[:1], x[1:] + gate * x[:-1]])
