"""Reading a sweep from MLflow: records.csv of the parent run, the local per-configuration files only
when that artifact does not exist (with a note), every other failure raised; directions from params."""

import pandas as pd
import pytest

from analysis.load import Source, from_file, from_sweep

COLUMNS = ["method", "seed", "step", "train_task", "eval_task", "metric", "value"]


def _records(method: str, value: float) -> pd.DataFrame:
    return pd.DataFrame([(method, 0, 10, 1, 1, "fd", value), (method, 0, 20, 2, 1, "fd", value + 1),
                         (method, 0, 20, 2, 2, "fd", value + 2)], columns=COLUMNS).assign(config_id=method.lower())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return root, f"sqlite:///{root / 'mlflow.db'}"


def _sweep(store, name, params, records_csv=None):
    from mlflow.tracking import MlflowClient

    root, uri = store
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
    run = client.create_run(exp, tags={"level": "sweep"})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    if records_csv is not None:
        client.log_artifact(run.info.run_id, str(records_csv))
    return client, run.info.run_id


def test_finished_sweep_reads_records_csv_and_directions(store, tmp_path, capsys):
    path = tmp_path / "records.csv"
    _records("A", 10.0).to_csv(path, index=False)
    _, run_id = _sweep(store, "done", {"direction.fd": "min", "direction.gen_acc": "max", "seeds": "0",
                                       "objective_metric": "fd", "objective_mode": "min"}, path)
    (tmp_path / "records").mkdir()
    _records("LOCAL", 99.0).to_csv(tmp_path / "records" / "x.csv", index=False)   # must be ignored
    source = from_sweep("done", store[1], [tmp_path / "records" / "x.csv"])
    assert set(source.records["method"]) == {"A"} and source.parent_run_id == run_id
    assert source.directions == {"fd": False, "gen_acc": True}
    assert source.objective == {"metric": "fd", "mode": "min"} and source.seeds == [0]
    assert "note:" not in capsys.readouterr().err


def test_unfinished_sweep_falls_back_to_local_files_with_a_note(store, tmp_path, capsys):
    _sweep(store, "running", {"seeds": "0"})
    folder = tmp_path / "runs" / "running" / "records"
    folder.mkdir(parents=True)
    _records("A", 1.0).to_csv(folder / "a.csv", index=False)
    _records("B", 2.0).to_csv(folder / "b.csv", index=False)
    source = from_sweep("running", store[1], [folder / "a.csv", folder / "b.csv"])
    assert sorted(source.records["method"].unique()) == ["A", "B"]
    assert source.directions == {}                                           # no direction params: none known
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: sweep running has no records.csv yet (not finished)")
    assert "the 2 per-configuration record files" in err[0]


def test_unfinished_sweep_without_any_records_is_an_error(store, tmp_path):
    _sweep(store, "empty", {})
    with pytest.raises(ValueError, match="sweep empty has no records yet"):
        from_sweep("empty", store[1], [])


def test_a_failed_download_is_raised_not_replaced_by_local_files(store, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    path = tmp_path / "records.csv"
    _records("A", 10.0).to_csv(path, index=False)
    _sweep(store, "broken", {}, path)
    folder = tmp_path / "runs" / "broken" / "records"
    folder.mkdir(parents=True)
    _records("LOCAL", 99.0).to_csv(folder / "x.csv", index=False)

    def fail(*args, **kwargs):
        raise OSError("connection reset by peer")

    monkeypatch.setattr(MlflowClient, "download_artifacts", fail)
    with pytest.raises(OSError, match="connection reset"):
        from_sweep("broken", store[1], [folder / "x.csv"])


def test_a_records_file_has_no_directions(tmp_path):
    _records("A", 1.0).to_csv(tmp_path / "r.csv", index=False)
    source = from_file(str(tmp_path / "r.csv"))
    assert isinstance(source, Source) and source.directions == {}
