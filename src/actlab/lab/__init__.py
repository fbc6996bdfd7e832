"""The lab: models, initialisations, data and training that the experiments build on.

- :mod:`actlab.lab.data`: :func:`load_dataset` (synthetic 2-D, scikit-learn, MNIST / Fashion-MNIST
  from IDX files, sequence tasks), preprocessing fitted on the training split, download / verify.
- :mod:`actlab.lab.init`: :func:`init_weights` with every classic scheme (:data:`INIT_SCHEMES`).
- :mod:`actlab.lab.models`: :class:`MLP`, :class:`SmallCNN`, :class:`RNNModel`, :func:`build_model`.
- :mod:`actlab.lab.train`: :func:`train` with :class:`TrainConfig`, returning a :class:`TrainResult`.

Example::

    >>> from actlab.lab import MLP, TrainConfig, init_weights, load_dataset, train
    >>> data = load_dataset("spirals", n=400, seed=0)
    >>> model = init_weights(MLP(2, 2, depth=3, width=32, activation="tanh"), "xavier_normal", seed=0)
    >>> result = train(model, data, TrainConfig(optimiser="adam", lr=0.01, steps=500))
"""

from actlab.lab.data import (
    DATASETS,
    Dataset,
    DatasetError,
    DatasetNotFound,
    download,
    is_available,
    load_dataset,
    load_sequence_task,
    verify,
)
from actlab.lab.init import INIT_SCHEMES, InitError, init_weights
from actlab.lab.models import MLP, MODELS, RNNModel, SmallCNN, build_model, count_parameters
from actlab.lab.train import Callback, EpochBatches, TrainConfig, TrainError, TrainResult, train

__all__ = [
    "DATASETS",
    "INIT_SCHEMES",
    "MLP",
    "MODELS",
    "Callback",
    "Dataset",
    "DatasetError",
    "DatasetNotFound",
    "EpochBatches",
    "InitError",
    "RNNModel",
    "SmallCNN",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "build_model",
    "count_parameters",
    "download",
    "init_weights",
    "is_available",
    "load_dataset",
    "load_sequence_task",
    "train",
    "verify",
]
