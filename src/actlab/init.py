"""Re-initialise a model per each layer's activation, in place (``torch.nn.init`` style names).

Example::

    >>> import actlab.init
    >>> actlab.init.critical_(model)        # edge of chaos: sigma_w^2 from the mean-field theory
    >>> actlab.init.he_(model); actlab.init.xavier_(model); actlab.init.lsuv_(model, x)

Implemented in :mod:`actlab.lab.init` (with :func:`init_weights` and every scheme by name).
"""

from actlab.lab.init import INIT_SCHEMES, InitError, critical_, he_, init_weights, lsuv_, xavier_

__all__ = ["INIT_SCHEMES", "InitError", "critical_", "he_", "init_weights", "lsuv_", "xavier_"]
