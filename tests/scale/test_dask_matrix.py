"""Matrix cells tuned as tasks on a real Dask LocalCluster give the same matrices as a local run."""

from __future__ import annotations

import numpy as np

from fdt.pipelines.matrix import generalisation_matrices
from fdt.pipelines.specs import get_spec
from tests.pipelines.conftest import SOURCES, make_featureset


def test_dask_matrix_equals_local():
    from distributed import Client, LocalCluster

    data = {res: make_featureset(SOURCES, per_source=30, seed=i, resolution=res) for i, res in enumerate(("native", "64"))}
    args = (data, ["coco"], ["inpaint", "sd21", "dcgan"], get_spec("logreg"), "roc_auc", 2, 3)
    local = generalisation_matrices(*args)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        remote = generalisation_matrices(*args, client=client)
    assert len(local.matrices) == len(remote.matrices) == 3
    for a, b in zip(local.matrices, remote.matrices):
        np.testing.assert_allclose(a.values, b.values)
    assert local.best_params == remote.best_params
