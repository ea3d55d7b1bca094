"""`milestone export mlflow` against a real MLflow server (sqlite backend, local artifact store), checked through
MLflow's own client: one MLflow run per evidence run however often it is exported, each metric point once at its
real step, params equal to the config, artifacts byte for byte, tags that lead back to the evidence."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow  # the dev extra installs it: a missing install fails here rather than skipping the module
import pytest
from mlflow.tracking import MlflowClient

from _close_support import git, make_run

from tunix_rt import evidence
from tunix_rt.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]

QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}  # no machine here reaches the internet


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tracking server for the whole module; each test writes into its own experiment."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
               f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text(errors='replace')}")
            time.sleep(0.5)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def client(server: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    for name, value in QUIET.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return MlflowClient(tracking_uri=server)


@pytest.fixture
def m44(project: Project, run_cli) -> Project:
    assert run_cli("start", "M44", "--title", "Exported").code == 0
    make_run(project, "M44", "m44_v1", steps=10)
    make_run(project, "M44", "m44_v2", kind="eval")
    return project


def _export(run_cli, server: str, experiment: str, *args: str):
    out = run_cli("export", "mlflow", "--tracking-uri", server, "--experiment", experiment, *args)
    assert out.code == 0, out
    return out


def _runs(client: MlflowClient, experiment: str) -> dict[str, mlflow.entities.Run]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    names = [run.info.run_name for run in runs]
    assert len(names) == len(set(names)), f"duplicate MLflow runs: {names}"
    return {run.info.run_name: run for run in runs}


def _step_lines(project: Project, run_id: str) -> list[dict]:
    lines = (project.runs_dir / run_id / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [line for line in map(json.loads, lines) if not line.get("final")]


def test_two_exports_leave_one_run_per_evidence_run_and_each_step_once(m44: Project, client, server, run_cli) -> None:
    first = _export(run_cli, server, "twice")
    second = _export(run_cli, server, "twice", "--json")

    runs = _runs(client, "twice")
    assert sorted(runs) == ["m44_v1", "m44_v2"]
    assert [line.split(" (")[-1] for line in first.out.splitlines()] == ["created)", "created)"]
    assert f"exported m44_v1 → run {runs['m44_v1'].info.run_id} (created)" in first.out
    reported = json.loads(second.out)
    assert [(r["run"], r["action"], r["mlflow_run_id"], r["metrics_logged"]) for r in reported] == [
        ("m44_v1", "updated", runs["m44_v1"].info.run_id, 0), ("m44_v2", "updated", runs["m44_v2"].info.run_id, 0)]

    steps = _step_lines(m44, "m44_v1")
    train = runs["m44_v1"].info.run_id
    for key in ("loss", "epoch", "learning_rate", "grad_norm", "tokens_seen", "elapsed_s"):
        history = sorted(client.get_metric_history(train, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(line["step"], pytest.approx(line[key])) for line in steps], key
    final = json.loads((m44.runs_dir / "m44_v1" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    for key in ("final_loss", "train_loss", "mfu", "train_runtime"):
        history = client.get_metric_history(train, f"train.{key}")
        assert [(m.step, m.value) for m in history] == [(10, pytest.approx(final[key]))], key
    for run in runs.values():
        assert client.get_metric_history(run.info.run_id, "eval.primary_score")[0].value == pytest.approx(0.35)
        assert len(client.get_metric_history(run.info.run_id, "eval.primary_score")) == 1
        assert run.data.metrics["eval.totals.normalised"] == 7
    assert "loss" not in runs["m44_v2"].data.metrics  # an eval run has no training lines
    assert runs["m44_v1"].info.status == "FINISHED"
    assert runs["m44_v1"].info.start_time == 1767873600000  # 2026-01-08T12:00:00Z, from the manifest
    assert runs["m44_v1"].info.end_time == 1767873610000


def test_params_equal_the_config_and_a_long_value_is_cut_visibly(m44: Project, client, server, run_cli) -> None:
    folder = m44.runs_dir / "m44_v1"
    long = "x" * 7000
    config = folder / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + f"data:\n  prompt: {long}\n  files: [a.jsonl, b.jsonl]\n"
                      "  limit: null\n", encoding="utf-8")
    evidence.write_artifacts(m44, "m44_v1", folder)
    _export(run_cli, server, "params")

    params = _runs(client, "params")["m44_v1"].data.params
    prompt = params.pop("data.prompt")
    assert params == {"model.arch": "gpt2-tiny", "model.n_layer": "2", "training.batch_size": "8",
                      "training.learning_rate": "0.001", "training.max_steps": "10",
                      "data.files": '["a.jsonl", "b.jsonl"]', "data.limit": "null"}
    assert len(prompt) <= 6000 and prompt.startswith("x" * 5000) and prompt.endswith("[truncated: 7000 characters]")
    _export(run_cli, server, "params")  # params are immutable in MLflow: the second export must not resend them
    assert _runs(client, "params")["m44_v1"].data.params["data.prompt"] == prompt


def _sha256_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_artifacts_are_the_evidence_files_byte_for_byte_without_ignored_weights(
        m44: Project, client, server, run_cli, tmp_path: Path) -> None:
    folder = m44.runs_dir / "m44_v1"
    (folder / "final_model").mkdir()
    (folder / "final_model" / "model.safetensors").write_bytes(b"\x00" * 4096)  # ignored by git: stays private
    (folder / "samples").mkdir()
    (folder / "samples" / "first.txt").write_bytes("één\r\nraw bytes\n".encode("utf-8"))
    evidence.write_artifacts(m44, "m44_v1", folder)
    _export(run_cli, server, "files")
    _export(run_cli, server, "files")

    run = _runs(client, "files")["m44_v1"]
    downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "down"),
                                                          tracking_uri=server))
    expected = {path: digest for path, digest in _sha256_tree(folder).items() if not path.startswith("final_model/")}
    assert "samples/first.txt" in expected and "artifacts.json" in expected
    assert _sha256_tree(downloaded) == expected


def test_tags_lead_back_to_the_milestone_commit_and_evidence(m44: Project, client, server, run_cli) -> None:
    folder = m44.runs_dir / "m44_v1"
    sha = git(m44.root, "rev-parse", "HEAD").strip()
    manifest = json.loads((folder / "run_manifest.json").read_text(encoding="utf-8"))
    manifest["git"] = {"sha": sha, "dirty": False}
    (folder / "run_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    evidence.write_artifacts(m44, "m44_v1", folder)
    _export(run_cli, server, "tags")

    runs = _runs(client, "tags")
    tags = runs["m44_v1"].data.tags
    digest = hashlib.sha256((folder / "artifacts.json").read_bytes()).hexdigest()
    assert {k: tags.get(k) for k in ("tunix_rt.run_id", "tunix_rt.milestone", "tunix_rt.kind", "tunix_rt.git_commit",
                                     "mlflow.source.git.commit", "tunix_rt.evidence_sha256", "mlflow.runName")} == {
        "tunix_rt.run_id": "m44_v1", "tunix_rt.milestone": "M44", "tunix_rt.kind": "train",
        "tunix_rt.git_commit": sha, "mlflow.source.git.commit": sha, "tunix_rt.evidence_sha256": digest,
        "mlflow.runName": "m44_v1"}
    assert runs["m44_v2"].data.tags["tunix_rt.kind"] == "eval"
    assert "mlflow.source.git.commit" not in runs["m44_v2"].data.tags  # its manifest records no commit


def test_milestone_exports_its_own_runs_and_all_every_milestones(m44: Project, client, server, run_cli) -> None:
    assert run_cli("start", "M45", "--title", "Next").code == 0
    make_run(m44, "M45", "m45_v1", steps=5)

    _export(run_cli, server, "scope", "--milestone", "m44")
    assert sorted(_runs(client, "scope")) == ["m44_v1", "m44_v2"]
    _export(run_cli, server, "scope-current")  # the current milestone, M45
    assert sorted(_runs(client, "scope-current")) == ["m45_v1"]
    out = _export(run_cli, server, "scope", "--all")
    runs = _runs(client, "scope")
    assert sorted(runs) == ["m44_v1", "m44_v2", "m45_v1"]
    assert runs["m45_v1"].data.tags["tunix_rt.milestone"] == "M45"
    assert out.out.count("(updated)") == 2 and out.out.count("(created)") == 1
    both = run_cli("export", "mlflow", "--tracking-uri", server, "--milestone", "M44", "--all")
    assert both.code == 2 and "not both" in both.err


def test_the_environment_names_the_server_and_the_project_names_the_experiment(
        m44: Project, client, server, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    out = run_cli("export", "mlflow")
    assert out.code == 0, out
    assert sorted(_runs(client, m44.root.name)) == ["m44_v1", "m44_v2"]


def test_no_tracking_uri_is_exit_2_and_writes_nothing(m44: Project, client, run_cli) -> None:
    before = sorted(e.name for e in client.search_experiments())
    status = git(m44.root, "status", "--porcelain")
    out = run_cli("export", "mlflow", "--experiment", "nowhere")
    assert out.code == 2
    assert out.err.strip().splitlines() == [
        "error: no MLflow tracking server: pass --tracking-uri URI or set MLFLOW_TRACKING_URI"]
    assert out.out == ""
    assert sorted(e.name for e in client.search_experiments()) == before
    assert git(m44.root, "status", "--porcelain") == status


def test_a_run_added_after_an_export_is_created_and_the_others_updated(m44: Project, client, server, run_cli) -> None:
    _export(run_cli, server, "later")
    before = {name: run.info.run_id for name, run in _runs(client, "later").items()}
    make_run(m44, "M44", "m44_v3", steps=4)
    out = _export(run_cli, server, "later")

    runs = _runs(client, "later")
    assert sorted(runs) == ["m44_v1", "m44_v2", "m44_v3"]
    assert {name: runs[name].info.run_id for name in before} == before
    assert out.out.splitlines() == [f"exported m44_v1 → run {before['m44_v1']} (updated)",
                                    f"exported m44_v2 → run {before['m44_v2']} (updated)",
                                    f"exported m44_v3 → run {runs['m44_v3'].info.run_id} (created)"]
    assert [m.step for m in client.get_metric_history(runs["m44_v3"].info.run_id, "loss")] == [1, 2, 3, 4]
    assert len(client.get_metric_history(before["m44_v1"], "loss")) == 10


def test_a_run_without_finished_evidence_is_skipped_by_name(m44: Project, client, server, run_cli) -> None:
    (m44.runs_dir / "m44_v2" / "artifacts.json").unlink()  # what a run killed before its end leaves
    out = _export(run_cli, server, "skipped")
    assert out.out.splitlines()[1] == "skipped m44_v2: no artifacts.json in submission_runs/m44_v2 (unfinished)"
    assert sorted(_runs(client, "skipped")) == ["m44_v1"]


def test_an_unreachable_server_is_exit_1_in_one_line(m44: Project, client, run_cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow retries for minutes by default
    out = run_cli("export", "mlflow", "--tracking-uri", f"http://127.0.0.1:{_free_port()}")
    assert out.code == 1, out
    assert len(out.err.strip().splitlines()) == 1 and "(0 of 2 run(s) exported)" in out.err


def test_without_mlflow_installed_the_error_names_the_install(m44: Project, run_cli, server,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    out = run_cli("export", "mlflow", "--tracking-uri", server)
    assert out.code == 2
    assert out.err.strip() == "error: mlflow is not installed: pip install 'tunix-rt[mlflow]'"


def test_the_command_line_does_not_import_mlflow() -> None:
    code = "import sys, tunix_rt.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
