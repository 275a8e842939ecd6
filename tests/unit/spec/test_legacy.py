"""Legacy jobs (V1beta1/V1beta2, bare Spec, IPVM) translate with Bacalhau's mapping, and the
report accounts for every field: what is not listed as dropped is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from klippfisk.spec import SpecError, compile_document, compile_path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"

RICH_V1BETA2 = {
    "APIVersion": "V1beta2",
    "Metadata": {"ID": "old-id", "ClientID": "team-a", "CreatedAt": "2023-01-01T00:00:00Z"},
    "Spec": {
        "Engine": "Docker",
        "Verifier": "Noop",
        "PublisherSpec": {"Type": "S3", "Params": {"Bucket": "results", "Key": "out/"}},
        "Docker": {
            "Image": "ubuntu:22.04",
            "Entrypoint": ["/bin/bash", "-c"],
            "Parameters": ["ls /data"],
            "EnvironmentVariables": ["COLOUR=blue"],
            "WorkingDirectory": "/work",
        },
        "Resources": {"CPU": "1500m", "Memory": "2147483648", "Disk": "1000000000", "GPU": "1"},
        "Network": {"Type": "HTTP", "Domains": ["example.com"]},
        "Timeout": 600,
        "Inputs": [
            {"StorageSource": "IPFS", "Name": "cid-in", "CID": "QmCID", "Path": "/data/ipfs"},
            {
                "StorageSource": "URLDownload",
                "URL": "https://example.com/a.csv",
                "Path": "/data/url",
            },
            {
                "StorageSource": "inline",
                "URL": "data:text/plain;base64,aGk=",
                "Path": "/data/inline",
            },
            {
                "StorageSource": "localDirectory",
                "SourcePath": "/srv/shared",
                "ReadWrite": True,
                "Path": "/data/local",
            },
            {
                "StorageSource": "s3",
                "S3": {"Bucket": "in", "Key": "k/", "Region": "eu-west-1", "VersionID": "v9"},
                "Path": "/data/s3",
            },
            {"StorageSource": "filecoin", "CID": "bafyfil", "Path": "/data/fil"},
        ],
        "Outputs": [{"StorageSource": "IPFS", "Name": "results", "Path": "/outputs"}],
        "Annotations": ["nightly", "gpu"],
        "NodeSelectors": [{"Key": "zone", "Operator": "in", "Values": ["a", "b"]}],
        "DoNotTrack": True,
        "Deal": {"Concurrency": 3, "Confidence": 2, "MinBids": 2},
    },
}


def _leaves(data: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{pointer}/{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, f"{pointer}/{index}")
    else:
        yield pointer, data


def _kept_texts(job: dict[str, Any]) -> set[str]:
    """Every leaf value and map key of the canonical job, as lower-case text."""
    texts: set[str] = set()
    stack: list[Any] = [job]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            texts.update(str(k).lower() for k in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            texts.add(str(node).lower())
    return texts


def _assert_nothing_lost(document: dict[str, Any]) -> None:
    compiled = compile_document(yaml.safe_dump(document))
    dropped = [m.source for m in compiled.report.migrations if m.action == "dropped"]
    kept = _kept_texts(compiled.job)
    lost = [
        (pointer, value)
        for pointer, value in _leaves(document)
        if value not in ("", None, [], {})
        and not any(pointer == d or pointer.startswith(d + "/") for d in dropped)
        and str(value).lower() not in kept
    ]
    assert lost == []


def test_a_rich_v1beta2_job_keeps_every_field_not_reported_dropped() -> None:
    _assert_nothing_lost(RICH_V1BETA2)


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in CORPUS.iterdir()
        if ("064edc822" in p.name or "v1.0.0" in p.name)
        and "invalid" not in p.name
        and "job-test" not in p.name
        and "task" not in p.name
        and "empty" not in p.name
    ),
)
def test_legacy_corpus_files_keep_every_field_not_reported_dropped(name: str) -> None:
    _assert_nothing_lost(yaml.safe_load((CORPUS / name).read_text(encoding="utf-8")))


def test_the_translation_follows_bacalhaus_mapping() -> None:
    compiled = compile_document(yaml.safe_dump(RICH_V1BETA2))
    job, task = compiled.job, compiled.job["Tasks"][0]
    assert (job["Type"], job["Count"], job["Namespace"]) == ("batch", 3, "team-a")
    assert job["Labels"] == {"nightly": "", "gpu": ""}
    assert job["Constraints"] == [{"Key": "zone", "Operator": "in", "Values": ["a", "b"]}]
    assert task["Name"] == "main"
    assert task["Timeouts"]["TotalTimeout"] == 600
    assert task["Network"] == {"Type": "HTTP", "Domains": ["example.com"], "Ports": []}
    assert task["ResultPaths"] == [{"Name": "results", "Path": "/outputs"}]
    sources = [(s["Source"]["Type"], s["Target"]) for s in task["InputSources"]]
    assert sources == [
        ("ipfs", "/data/ipfs"),
        ("urlDownload", "/data/url"),
        ("inline", "/data/inline"),
        ("localDirectory", "/data/local"),
        ("s3", "/data/s3"),
    ]
    assert task["Publisher"] == {"Type": "s3", "Params": {"Bucket": "results", "Key": "out/"}}
    assert compiled.report.form == "legacy-v1beta2"


def test_unrepresentable_fields_are_listed_with_their_paths() -> None:
    compiled = compile_document(yaml.safe_dump(RICH_V1BETA2))
    dropped = {m.source for m in compiled.report.migrations if m.action == "dropped"}
    assert {
        "/Spec/Verifier",
        "/Spec/Deal/Confidence",
        "/Spec/Deal/MinBids",
        "/Spec/DoNotTrack",
        "/Spec/Inputs/4/S3/VersionID",
        "/Spec/Inputs/5",
        "/Metadata/ID",
    } <= dropped
    assert all(m.line for m in compiled.report.migrations)


def test_targeting_all_nodes_makes_an_ops_job() -> None:
    text = "APIVersion: V1beta1\nSpec: {Engine: noop, Deal: {TargetingMode: true}}\n"
    job = compile_document(text).job
    assert (job["Type"], job["Count"]) == ("ops", 0)


def test_a_bare_legacy_spec_is_translated() -> None:
    text = "Engine: docker\nDocker: {Image: ubuntu, Entrypoint: [date]}\nDeal: {Concurrency: 1}\n"
    compiled = compile_document(text)
    assert compiled.report.form == "legacy-spec"
    assert compiled.job["Tasks"][0]["Engine"]["Params"] == {
        "Image": "ubuntu",
        "Entrypoint": ["date"],
    }


def test_the_legacy_envelope_needs_an_api_version() -> None:
    with pytest.raises(SpecError) as caught:
        compile_document("Spec: {Engine: noop}\n")
    assert caught.value.problems[0].pointer == "/APIVersion"
    with pytest.raises(SpecError) as caught:
        compile_document("APIVersion: V9\nSpec: {Engine: noop}\n")
    assert "V1beta1" in caught.value.problems[0].hint


def test_legacy_wasm_modules_are_mounted_as_inputs() -> None:
    compiled = compile_path(CORPUS / "064edc822__testdata__job-wasm-engine-spec.json")
    task = compiled.job["Tasks"][0]
    assert task["Engine"]["Params"]["EntryModule"] == "/wasm/entry.wasm"
    assert [s["Target"] for s in task["InputSources"]] == ["/wasm/entry.wasm"]
    assert task["InputSources"][0]["Source"]["Type"] == "inline"


def test_current_jobs_with_legacy_wasm_params_are_rewritten_like_bacalhau() -> None:
    legacy = compile_path(CORPUS / "HEAD__testdata__jobs__wasm_legacy.yaml")
    [migration] = legacy.report.migrations
    assert (migration.action, migration.source) == (
        "rewritten",
        "/Tasks/0/Engine/Params/EntryModule",
    )
    params = legacy.job["Tasks"][0]["Engine"]["Params"]
    assert params == {"EntryModule": "/wasm/entry.wasm", "Entrypoint": "_start"}


def test_ipvm_tasks_translate_engine_mounts_outputs_and_config() -> None:
    wasm = compile_path(CORPUS / "064edc822__testdata__wasm_task.json").job["Tasks"][0]
    assert wasm["Engine"]["Params"]["EntryModule"] == "/job"
    targets = {s["Target"]: s["Source"]["Type"] for s in wasm["InputSources"]}
    assert targets == {
        "/job": "ipfs",
        "/inputs": "urlDownload",
        "/wasm/imports/module_0.wasm": "ipfs",
    }
    assert wasm["Env"] == {"HELLO": "world"}
    assert wasm["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}]
    configured = compile_path(CORPUS / "064edc822__testdata__task_with_config.json").job
    task = configured["Tasks"][0]
    assert task["Publisher"]["Type"] == "ipfs"
    assert task["Timeouts"]["TotalTimeout"] == 300
    assert task["Resources"] == {
        "CPU": "1m",
        "Memory": "1073741824",
        "Disk": "1073741824",
        "GPU": "0",
    }
    assert configured["Labels"] == {"hello": ""}


def test_an_unknown_legacy_engine_is_unrepresentable() -> None:
    with pytest.raises(SpecError) as caught:
        compile_document("APIVersion: V1beta1\nSpec: {Engine: Language}\n")
    assert caught.value.problems[0].code == "unrepresentable"


def test_problems_in_translated_fields_point_at_the_legacy_line() -> None:
    text = (
        "APIVersion: V1beta1\nSpec:\n  Engine: docker\n  Docker:\n    Image: ''\n"
        "  Resources:\n    CPU: lots\n  outputs:\n    - Name: out\n      path: relative\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_document(text)
    lines = {p.pointer: p.line for p in caught.value.problems}
    assert lines == {
        "/Tasks/0/Engine/Params/Image": 5,
        "/Tasks/0/Resources/CPU": 7,
        "/Tasks/0/ResultPaths/0/Path": 10,
    }


def test_a_wrapped_legacy_job_is_located_inside_the_wrapper() -> None:
    wrapped = {"Job": {"APIVersion": "V1beta2", "Spec": {"Engine": "docker", "Docker": {}}}}
    with pytest.raises(SpecError) as caught:
        compile_document(yaml.safe_dump(wrapped, sort_keys=False))
    [problem] = caught.value.problems
    assert (problem.pointer, problem.line) == ("/Tasks/0/Engine/Params/Image", 5)
