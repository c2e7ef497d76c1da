"""The one place that chooses cuDF (when :func:`~sessrec_course.environment.cudf_usable`) or pandas for the ETL."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

ENV_VAR = "SESSREC_DATAFRAME"


@dataclass(frozen=True)
class Backend:
    """A dataframe library and its matching array library."""

    name: str  # "pandas" or "cudf"
    df: ModuleType  # pandas or cudf
    xp: ModuleType  # numpy or cupy
    on_gpu: bool = False  # tables and arrays live on the GPU

    def column(self, frame: Any, name: str, dtype: str | None = None) -> Any:
        """Return column ``name`` of ``frame`` as an array of this backend (optionally cast to ``dtype``)."""
        series = frame[name]
        return self.values(series if dtype is None or str(series.dtype) == dtype else series.astype(dtype))

    def values(self, series: Any) -> Any:
        """Return the values of a Series as an array of this backend."""
        return series.values if self.on_gpu else series.to_numpy()

    def timestamps_ns(self, frame: Any, name: str = "timestamp") -> Any:
        """Return a datetime column as int64 nanoseconds since the epoch (any input resolution)."""
        series = frame[name]
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert(None)
        if str(series.dtype) != "datetime64[ns]":
            series = series.astype("datetime64[ns]")
        return self.values(series.astype("int64"))

    def unique_counts(self, values: Any) -> tuple[Any, Any]:
        """Return (sorted unique values, their counts) of an int64 array (hash-based on pandas)."""
        if self.on_gpu:
            return self.xp.unique(values, return_counts=True)
        counts = pd.Series(values, copy=False).value_counts(sort=False)
        keys = counts.index.to_numpy(np.int64)
        order = np.argsort(keys)
        return keys[order], counts.to_numpy(np.int64)[order]

    def lookup(self, keys: Any, values: Any) -> Any:
        """Return the position of every value in the sorted unique ``keys`` array, -1 when absent."""
        xp = self.xp
        if len(keys) == 0:
            return xp.full(len(values), -1, dtype=np.int64)
        if not self.on_gpu:
            return pd.Index(keys).get_indexer(values)
        idx = xp.minimum(xp.searchsorted(keys, values), len(keys) - 1)
        return xp.where(keys[idx] == values, idx, -1)

    def to_numpy(self, values: Any) -> np.ndarray:
        """Return a host numpy copy/view of a backend array."""
        return self.xp.asnumpy(values) if self.on_gpu else np.asarray(values)

    def frame_from_arrow(self, table: pa.Table) -> Any:
        """Return a dataframe of this backend holding the arrow ``table`` (list columns stay lists)."""
        return self.df.DataFrame.from_arrow(table) if self.on_gpu else table.to_pandas()

    def to_pandas(self, frame: Any) -> pd.DataFrame:
        """Return ``frame`` as a pandas DataFrame (a no-op on pandas)."""
        return frame.to_pandas() if self.on_gpu else frame

    def from_pandas(self, frame: pd.DataFrame) -> Any:
        """Return a pandas ``frame`` as a dataframe of this backend."""
        return self.df.DataFrame.from_pandas(frame) if self.on_gpu else frame

    def dask(self) -> ModuleType:
        """Return the Dask dataframe module whose partitions are frames of this backend (dask-cudf on the GPU)."""
        import dask
        import dask.dataframe as dd

        if self.on_gpu:
            import dask_cudf  # noqa: F401 - registers the "cudf" dataframe backend of dask

            dask.config.set({"dataframe.backend": "cudf"})
        return dd

    def local_cluster(self, n_workers: int, memory_limit: str | int | None = "auto", **kwargs: Any) -> Any:
        """A Dask cluster here, one thread a worker: ``LocalCluster`` (pandas) or ``LocalCUDACluster`` (a GPU each)."""
        if self.on_gpu:
            from dask_cuda import LocalCUDACluster as Cluster
        else:
            from distributed import LocalCluster as Cluster

            kwargs.update(processes=True, silence_logs=kwargs.get("silence_logs", logging.ERROR))  # p2p logs a lot
        return Cluster(n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit, **kwargs)


@functools.cache
def _make_backend(name: str) -> Backend:
    if name == "cudf":
        import cudf
        import cupy

        return Backend("cudf", cudf, cupy, on_gpu=True)
    return Backend("pandas", pd, np)


def get_backend(name: str | None = None) -> Backend:
    """The dataframe/array backend: ``name``, else ``$SESSREC_DATAFRAME``, else cuDF when it is usable."""
    name = name or os.environ.get(ENV_VAR, "").strip().lower()
    if name and name not in ("pandas", "cudf"):
        raise ValueError(f"dataframe backend {name!r} (or {ENV_VAR}): expected 'pandas' or 'cudf'")
    if not name:
        from sessrec_course.environment import cudf_usable

        name = "cudf" if cudf_usable()[0] else "pandas"
    return _make_backend(name)


def backend_of(frame: Any) -> Backend:
    """Return the backend a dataframe belongs to (pandas frames always get pandas)."""
    return _make_backend("pandas" if isinstance(frame, pd.DataFrame) else "cudf")
