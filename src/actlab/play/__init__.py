"""The playground: build a small network in the browser and watch it train, live.

``actlab play`` serves it (:func:`actlab.play.server.serve`); :mod:`actlab.play.config` holds
the controls, :mod:`actlab.play.session` runs one net with the lab's trainer and the probe, and
:func:`watch` streams a probe on your own model into the same panels.
"""

from actlab.play.live import LiveFeed, watch

__all__ = ["LiveFeed", "watch"]
