"""Key folding: keys match case-insensitively like Go's decoder, typos are caught, and
pointers map back to the document's own spelling."""

from __future__ import annotations

from klippfisk.spec.models import (
    SERVER_OWNED,
    Job,
    LegacyJob,
    SourceSpelling,
    fold_keys,
    source_pointer,
)


def test_keys_fold_to_bacalhaus_spelling_at_every_level() -> None:
    folded = fold_keys(
        {"NAME": "x", "tasks": [{"engine": {"TYPE": "docker", "params": {"image": "u"}}}]}, Job
    )
    assert folded.data == {
        "Name": "x",
        "Tasks": [{"Engine": {"Type": "docker", "Params": {"image": "u"}}}],
    }
    assert folded.unknown == [] and folded.clashes == []


def test_free_form_maps_keep_their_keys() -> None:
    folded = fold_keys({"meta": {"MixedCase": "v"}, "labels": {"a": "b"}}, Job)
    assert folded.data == {"Meta": {"MixedCase": "v"}, "Labels": {"a": "b"}}


def test_unknown_keys_are_listed_with_a_suggestion() -> None:
    folded = fold_keys({"Tasks": [{"Resorces": {}}], "Bogus": 1}, Job)
    assert folded.unknown == [("/Tasks/0/Resorces", "Resources"), ("/Bogus", "")]


def test_keys_given_twice_in_different_case_clash() -> None:
    assert fold_keys({"Name": "a", "name": "b"}, Job).clashes == ["/name"]


def test_ignored_keys_are_dropped_silently() -> None:
    folded = fold_keys({"id": "j-1", "State": {}, "Type": "batch"}, Job, ignore=SERVER_OWNED)
    assert folded.data == {"Type": "batch"} and folded.unknown == []


def test_legacy_models_fold_v1beta1_lower_case_keys() -> None:
    folded = fold_keys({"apiversion": "V1beta1", "spec": {"outputs": [{"path": "/o"}]}}, LegacyJob)
    assert folded.data == {"APIVersion": "V1beta1", "Spec": {"Outputs": [{"Path": "/o"}]}}


def test_source_pointer_recovers_the_documents_spelling() -> None:
    original = {"tasks": [{"engine": {"a/b": 1}}]}
    assert source_pointer(original, "/Tasks/0/Engine/a~1b") == "/tasks/0/engine/a~1b"
    assert source_pointer(original, "/Tasks/0/Missing/Deeper") == "/tasks/0/Missing/Deeper"


def test_one_spelling_serves_many_pointers_that_share_their_first_steps() -> None:
    spelling = SourceSpelling({"spec": {"inputs": [{"cid": "x", "Path": "/a"}]}})
    assert spelling.pointer("/Spec/Inputs/0/CID") == "/spec/inputs/0/cid"
    assert spelling.pointer("/Spec/Inputs/0/Path") == "/spec/inputs/0/Path"
    assert spelling.pointer("/Spec/Inputs/1/Path") == "/spec/inputs/1/Path"
    assert spelling.pointer("/Spec/Inputs/0/CID") == "/spec/inputs/0/cid"
