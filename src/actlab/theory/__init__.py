"""Signal-propagation theory: predict, before training, how an activation and an initialisation
carry signals and gradients through depth, and hold the prediction against measurement.

- :mod:`actlab.theory.meanfield`: length map, q*, chi_1, correlation map, c*, depth scales,
  phase, critical sigma_w^2, gains (Poole et al. 2016; Schoenholz et al. 2017).
- :mod:`actlab.theory.dying`: probability that a ReLU-family net is dead at initialisation
  (Lu, Shin, Su & Karniadakis 2019), by vectorised Monte Carlo with a confidence interval.
- :mod:`actlab.theory.plots`: phase diagram.

Measurement against these predictions (it builds and measures models) lives above, in
:mod:`actlab.lab.compare`.
"""

from actlab.theory.dying import BornDead, born_dead, born_dead_table
from actlab.theory.meanfield import (
    CRITICAL_SIGMA_B2,
    MeanField,
    TheoryError,
    analyse,
    c_star,
    chi,
    chi_1,
    correlation_map,
    critical_point,
    critical_sigma_w2,
    depth_scales,
    gain,
    gain_table,
    gradient_profile,
    length_map,
    pair_expect,
    phase,
    q_star,
    variance_profile,
)

__all__ = [
    "CRITICAL_SIGMA_B2",
    "BornDead",
    "MeanField",
    "TheoryError",
    "analyse",
    "born_dead",
    "born_dead_table",
    "c_star",
    "chi",
    "chi_1",
    "correlation_map",
    "critical_point",
    "critical_sigma_w2",
    "depth_scales",
    "gain",
    "gain_table",
    "gradient_profile",
    "length_map",
    "pair_expect",
    "phase",
    "q_star",
    "variance_profile",
]
