"""Run folders, the manifest schema (placeholders refused), artifacts.json hashing and verify."""

from __future__ import annotations

import json

import pytest

from tunix_rt import evidence
from tunix_rt.errors import TunixError


def _manifest(**overrides):
    data = {
        "run_id": "m44_v1", "milestone": "M44", "kind": "train",
        "plugin": {"name": "torch-sft", "version": "0.1.0"},
        "command": "milestone run train --config train.yaml",
        "git": {"sha": "a" * 40, "dirty": False},
        "config": {"path": "train.yaml", "sha256": "b" * 64},
        "datasets": [{"role": "train", "path": "data/train.jsonl", "sha256": "c" * 64, "records": 10}],
        "model": {"source": "hub", "id": "gpt2", "revision": "main"},
        "seed": 0, "device": "cpu", "dtype": "float32", "world_size": 1,
        "started": "2026-01-08T12:00:00Z", "ended": "2026-01-08T12:01:00Z", "duration_s": 60.0,
        "status": "completed",
    }
    data.update(overrides)
    return data


def test_valid_manifest_round_trips():
    manifest = evidence.Manifest.model_validate(_manifest())
    assert evidence.Manifest.model_validate_json(manifest.model_dump_json()) == manifest


@pytest.mark.parametrize("override", [
    {"command": "<PENDING>"},
    {"git": {"sha": "<PENDING>", "dirty": False}},
    {"device": "TODO"},
    {"started": ""},
    {"seed": None},
    {"model": {"source": "hub"}},
    {"datasets": []},
    {"config": {"path": "train.yaml", "sha256": "not-a-hash"}},
    {"status": "running"},
    {"extra_key": 1},
])
def test_manifest_rejects_placeholders_and_gaps(override):
    with pytest.raises(ValueError):
        evidence.Manifest.model_validate(_manifest(**override))


def test_next_run_id_and_atomic_allocation(project):
    assert evidence.next_run_id(project, "M44") == "m44_v1"
    run_id, folder = evidence.allocate(project, "M44", None)
    assert (run_id, folder.name) == ("m44_v1", "m44_v1") and folder.is_dir()
    (project.runs_dir / "m44_v7").mkdir()
    (project.runs_dir / "m45_v9").mkdir()
    assert evidence.allocate(project, "M44", None)[0] == "m44_v8"
    with pytest.raises(TunixError, match="already exists"):
        evidence.allocate(project, "M44", "m44_v1")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", "M44 v1", "/abs"])
def test_run_ids_escaping_the_repo_are_refused(project, bad):
    with pytest.raises(TunixError):
        evidence.check_new_run(project, bad)
    assert not (project.root.parent / "escape").exists()


def test_artifacts_verify_and_tamper(project, run_cli):
    run_id, folder = evidence.allocate(project, "M44", "m44_v1")
    evidence.write_json(folder / evidence.MANIFEST, _manifest())
    evidence.write_text(folder / "metrics.jsonl", '{"step": 1, "loss": 2.0}')
    (folder / "final_model").mkdir()
    (folder / "final_model" / "model.safetensors").write_bytes(b"\x00weights")
    artifacts = evidence.write_artifacts(project, run_id, folder)
    by_path = {a.path: a for a in artifacts.files}
    assert by_path["submission_runs/m44_v1/metrics.jsonl"].tracked is True
    assert by_path["submission_runs/m44_v1/final_model/model.safetensors"].tracked is False  # init's ignore rules
    assert (folder / evidence.ARTIFACTS).read_bytes().endswith(b"}\n")

    assert evidence.verify(project, "m44_v1").ok
    assert run_cli("verify", "m44_v1").code == 0

    (folder / "final_model" / "model.safetensors").unlink()  # weights are optional
    report = evidence.verify(project, "m44_v1")
    assert report.ok and report.absent_ignored == ["submission_runs/m44_v1/final_model/model.safetensors"]

    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n', encoding="utf-8")
    report = evidence.verify(project, "m44_v1")
    assert not report.ok and report.changed == ["submission_runs/m44_v1/metrics.jsonl"]
    result = run_cli("verify", "m44_v1")
    assert result.code == 1 and "metrics.jsonl" in result.err and "changed: submission_runs/m44_v1/metrics.jsonl" in result.out
    as_json = json.loads(run_cli("verify", "m44_v1", "--json").out)
    assert as_json["ok"] is False


def test_verify_unknown_run_is_bad_input(project, run_cli):
    assert run_cli("verify", "m44_v3").code == 2


def test_evidence_text_and_run_logs_are_written_redacted(tmp_path) -> None:
    """A token in a config, a prompt or a model's output never lands in an evidence file."""
    from tunix_rt.runs import Console

    token = "hf_" + "Q" * 30
    evidence.write_json(tmp_path / "config.json", {"note": f"token {token}"})
    evidence.write_text(tmp_path / "predictions.jsonl", f'{{"prompt": "HF_TOKEN={token}"}}')
    console = Console(tmp_path / "training_log.txt", stream=open(tmp_path / "stderr.txt", "w", encoding="utf-8"))
    console.log(f"loaded with {token}")
    console.stream.close()
    console.handle.close()
    for name in ("config.json", "predictions.jsonl", "training_log.txt", "stderr.txt"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert token not in text and "[REDACTED]" in text, name


def _verified_run(project):
    run_id, folder = evidence.allocate(project, "M44", "m44_v1")
    evidence.write_json(folder / evidence.MANIFEST, _manifest())
    evidence.write_text(folder / "metrics.jsonl", '{"step": 1, "loss": 2.0}')
    evidence.write_artifacts(project, run_id, folder)
    return folder


@pytest.mark.parametrize("name", [evidence.ARTIFACTS, evidence.MANIFEST])
@pytest.mark.parametrize("data", [b"\xff\xfe{not utf-8", b'{"run_id": "\xe9"}', b"\x00" * 10, b""])
def test_verify_of_an_unreadable_listing_or_manifest_is_one_line(project, run_cli, name, data):
    """D11: bytes that are not UTF-8 JSON are bad input, never a traceback."""
    folder = _verified_run(project)
    (folder / name).write_bytes(data)
    result = run_cli("verify", "m44_v1")
    assert result.code in (1, 2) and result.err.count("\n") == 1 and "Traceback" not in result.err, result


@pytest.mark.parametrize("path", ["submission_runs/m44_v1/a\x00b", "submission_runs/m44_v1/" + "x" * 5000,
                                  "submission_runs/m44_v1/" + "d/" * 3000 + "f"])
def test_verify_refuses_a_listed_path_that_is_no_path(project, run_cli, path):
    folder = _verified_run(project)
    listing = json.loads((folder / evidence.ARTIFACTS).read_text(encoding="utf-8"))
    listing["files"][0]["path"] = path
    (folder / evidence.ARTIFACTS).write_text(json.dumps(listing), encoding="utf-8")
    result = run_cli("verify", "m44_v1")
    assert result.code == 2 and "not a valid path" in result.err and result.err.count("\n") == 1, result
