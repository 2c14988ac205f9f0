"""`rgflow reproduce` against a running Dask scheduler: the output directory must be one every
worker sees (rgflow.core.reproduce.cluster.check_shared_dir)."""

import contextlib
import io
import shutil
import subprocess
import sys

import pytest

from rgflow.tui.__main__ import main


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --mount` (root)")
def test_output_directory_unseen_by_a_worker_is_refused(tmp_path, capsys):
    """A worker in its own mount namespace, with an empty tmpfs over the output's parent
    directory, cannot see what the client writes there: the run stops before any stage."""
    from distributed import Client, LocalCluster

    shared = tmp_path / "shared"
    shared.mkdir()
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster) as client:
        script = (f"mount -t tmpfs none {shared} && exec {sys.executable} -m "
                  f"distributed.cli.dask_worker {cluster.scheduler_address} --nthreads 1 "
                  "--no-dashboard")
        worker = subprocess.Popen(["unshare", "--mount", "sh", "-c", script],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=60)
            out = shared / "out"
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                code = main(["reproduce", "--preset", "tiny", "--out", str(out),
                             "--scheduler", cluster.scheduler_address])
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert code == 2 and buf.getvalue() == ""
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rgflow reproduce: error: {out}: not shared with Dask worker "
                   + err[0].split("Dask worker ", 1)[1]]
    assert "the output directory must be on a filesystem every worker sees" in err[0]
    assert [p.name for p in (out / "cache").iterdir()] == []  # no stage ran


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    code = main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "o"),
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("rgflow reproduce: error: cannot reach the Dask scheduler at "
                             "tcp://127.0.0.1:9")
