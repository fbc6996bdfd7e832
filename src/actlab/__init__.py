"""actlab: see, compare and fix how nonlinearities shape the training of neural networks."""

from actlab import functional, nn
from actlab.activations import ActivationError, ActivationSpec, apply, get, names, specs
from actlab.probe import Probe

__version__ = "0.1.0"

__all__ = ["ActivationError", "ActivationSpec", "Probe", "apply", "functional", "get", "names", "nn", "specs",
           "__version__"]
