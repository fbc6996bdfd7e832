"""actlab: see, compare and fix how nonlinearities shape the training of neural networks."""

from actlab import functional, nn
from actlab.activations import ActivationError, ActivationSpec, apply, get, names, specs

__version__ = "0.1.0"

__all__ = ["ActivationError", "ActivationSpec", "apply", "functional", "get", "names", "nn", "specs", "__version__"]
from actlab.probe import Probe  # noqa: E402  (the probe builds on the catalog above)
