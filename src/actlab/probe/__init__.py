"""The probe: find vanishing and exploding gradients, dead and saturated units and off-centre
activations in any PyTorch model, judged by each layer's own activation, and say what to change.

Example::

    >>> from actlab import Probe
    >>> with Probe(model, every=1) as probe:
    ...     train(model)                      # your loop, unchanged
    >>> probe.summary()                       # rich table + findings
    >>> probe.findings()[0].advice
"""

from actlab.probe.findings import Finding, Thresholds
from actlab.probe.probe import NonFiniteError, Probe, ProbeLayer
from actlab.probe.records import LayerRecord, ProbeRecords

__all__ = ["Finding", "LayerRecord", "NonFiniteError", "Probe", "ProbeLayer", "ProbeRecords", "Thresholds"]
