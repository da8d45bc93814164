"""A pseudo-random generator is created or seeded at init.

## What it does
Checks for pseudo-random number generators created or seeded in code that runs at initialisation:
`random.Random()`, `random.seed()`, NumPy's `default_rng()`, `np.random.seed()`, `RandomState`,
`Generator(...)` and the bit generators (`PCG64`, `MT19937`, ...), `SeedSequence()`, and the
seeding calls of PyTorch (`torch.manual_seed`, `torch.Generator`), TensorFlow
(`tf.random.set_seed`, `tf.random.Generator`) and JAX (`jax.random.PRNGKey`, `jax.random.key`).

## Why is this bad?
A snapshot captures the generator's internal state. Every clone restored from it resumes from
that same state, so all clones draw the same "random" numbers in the same order: the same
session ids, the same sampled records, the same retry jitter, the same nonces. Nothing fails; the
clones just stop being independent.

## Example
```python
import numpy as np
import random

RNG = random.Random()
NOISE = np.random.default_rng()


def handler(event, context):
    return {"id": RNG.getrandbits(64), "jitter": NOISE.uniform()}
```

## Use instead
Reseed after every restore, or create the generator where it is used:
```python
import numpy as np
import random

import snapsafe

RNG = random.Random()
NOISE = np.random.default_rng()


@snapsafe.after_restore
def reseed():
    RNG.seed()  # fresh OS entropy in every clone
    global NOISE
    NOISE = np.random.default_rng()
```
If every clone *should* produce the same sequence (a fixed seed for a reproducible model), say so
with `RNG = snapsafe.keep_deterministic(random.Random(42))`; the rule accepts it.

## Notes
`random.SystemRandom()` and `secrets` draw from the operating system on every call and are not
reported. snapsafe's built-in restorers reseed the `random` module and the generators they can
find, but only in sandboxes run by snapsafe; platforms such as Lambda SnapStart need the hook.
"""

from __future__ import annotations

from ..model import InitExpr, Rule
from .common import DETERMINISTIC_WRAPPERS, matches, wrapped_by

_CREATE = frozenset(
    {
        "random.Random",
        "numpy.random.default_rng",
        "numpy.random.RandomState",
        "numpy.random.mtrand.RandomState",
        "numpy.random.Generator",
        "numpy.random.PCG64",
        "numpy.random.PCG64DXSM",
        "numpy.random.MT19937",
        "numpy.random.Philox",
        "numpy.random.SFC64",
        "numpy.random.SeedSequence",
        "torch.Generator",
        "tensorflow.random.Generator",
        "tensorflow.random.Generator.from_seed",
        "tensorflow.random.Generator.from_non_deterministic_state",
        "jax.random.PRNGKey",
        "jax.random.key",
    }
)
_SEED = frozenset(
    {
        "random.seed",
        "random.setstate",
        "random.Random().seed",
        "numpy.random.seed",
        "numpy.random.set_state",
        "numpy.random.RandomState().seed",
        "torch.seed",
        "torch.manual_seed",
        "torch.random.manual_seed",
        "torch.random.seed",
        "torch.cuda.manual_seed",
        "torch.cuda.manual_seed_all",
        "tensorflow.random.set_seed",
        "tensorflow.keras.utils.set_random_seed",
        "keras.utils.set_random_seed",
    }
)


class PrngAtInit(Rule):
    name = "prng-at-init"
    summary = "pseudo-random generator created or seeded at init"
    fix = "Create or reseed the generator in an @snapsafe.after_restore hook or in the handler"

    def check(self, expr: InitExpr) -> str | None:
        if wrapped_by(expr.enclosing, DETERMINISTIC_WRAPPERS):
            return None
        if matches(expr.qualname, _SEED):
            return f"`{expr.display()}` seeds a pseudo-random generator at init; every clone repeats its sequence"
        if matches(expr.qualname, _CREATE):
            return f"`{expr.display()}` creates a pseudo-random generator at init; every clone repeats its sequence"
        return None
