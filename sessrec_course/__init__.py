"""sessrec_course: the helper package behind the session-based recommendation course.

One module (or sub-package) per stage of the course, imported lazily so that
``import sessrec_course`` stays cheap and pulls in neither torch nor TensorFlow:

- :mod:`sessrec_course.profiles`    run sizes (``ci`` / ``workshop`` / ``full``)
- :mod:`sessrec_course.environment` what this machine has (versions, GPU, cuDF, Triton)
- :mod:`sessrec_course.data`        generated default data and loaders for real formats
- :mod:`sessrec_course.etl`         the fitted session workflow (cuDF or pandas)
- :mod:`sessrec_course.evaluation`  metrics and protocols shared by every model
- :mod:`sessrec_course.baselines`   popularity, Markov, session-kNN
- :mod:`sessrec_course.models`      MLP, GRU, Transformer and HSTU session models
- :mod:`sessrec_course.training`    the one training loop
- :mod:`sessrec_course.serving`     Triton model repository, server and client
- :mod:`sessrec_course.plots`       the course's figures
"""

__version__ = "0.1.0"
