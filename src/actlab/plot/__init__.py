"""Figures, one module per topic; :mod:`actlab.plot.style` holds the shared look.

- :mod:`actlab.plot.activations`: f and f' of catalog activations (``plot_activation``, ``plot_grid``).
"""
