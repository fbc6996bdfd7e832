"""Where chunks of configurations are trained: ``local`` (this process, or a process pool) and
``ray`` (a Ray cluster).  Every backend trains the chunks :func:`actlab.sweep.engine.group_configs`
makes, and the driver alone writes to the store."""

BACKENDS = ("local", "ray")
