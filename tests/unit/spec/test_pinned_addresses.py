"""Known documents keep their addresses: a job_cid or task_cid that changes silently would
orphan every stored job and cached result keyed by it, so these values (computed by the
compiler before its speed work) pin the canonical bytes of each input form and route."""

from __future__ import annotations

from pathlib import Path

import pytest

from klippfisk.spec import compile_document, compile_job, compile_path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
PINNED = [
    (  # a current job in YAML
        "HEAD__testdata__jobs__docker.yaml",
        "klippfisk",
        "bagaaieralc7lxfoxhhroswce2nxcfimlsethuzyiaeeypctjgtuyp72lakxa",
        "bagaaieraw2uogrpdrdkrxkmraty57fcb2al7mnfkcyvd4lm42wjq2guzi5sa",
    ),
    (  # a 110 kB inline wasm module, in the job text and in the task text
        "HEAD__testdata__jobs__wasm.yaml",
        "klippfisk",
        "bagaaieraduf2n5gtlyfxhihre55ocwryz7ku2fc44y5nln6rgkxdbjlo37fq",
        "bagaaieraivzx5btuqcop7ha2wzb6dcrwxqx4jwgkasj4p34vx4lvaq4qhuda",
    ),
    (  # the same size of module in a legacy JSON job
        "064edc822__testdata__job-wasm-engine-spec.json",
        "klippfisk",
        "bagaaieraqksz43mbcfkip6ccrbaevsn646pxkde7xk3gyyio24x6lt4xfnjq",
        "bagaaierahggtt7h3zjlipd7fxye334cg67gxhno7qjdqr3bxfzxfqf4orida",
    ),
    (  # a legacy V1beta2-era job
        "064edc822__testdata__job.yaml",
        "klippfisk",
        "bagaaierauwhy4zxfdfjdsjxwmc7jnxu7vzxp7gm4jp7ckp5ysrbv6gmdhxda",
        "bagaaieraxqox3vyjsbfqmqqno6irsojhvmfcbffe24zvpnkkxdjpyyku5udq",
    ),
    (  # a V1beta1 job under Bacalhau's own defaults
        "v1.0.0__testdata__job-s3.yaml",
        "bacalhau",
        "bagaaierapekmanaroxkpriafca2psmxydjlviefd4gcdohgwn3bo3aw64jua",
        "bagaaierapcxv3slzbtpjelokzeln3jbodwsqtnhmhwagb42hystpobr2erfa",
    ),
    (  # an IPVM task
        "064edc822__testdata__docker_task.json",
        "klippfisk",
        "bagaaieranbszzvqkmw5pzazcrupusaglatnrxtvsdkktnet32b4jiga6egxa",
        "bagaaieras3gmqymgm4tcqp5irq36toewphebrj3spms2jvgtc6cv6pwusnra",
    ),
]
HTTP_BODY = {
    "Name": "bench-1",
    "Type": "batch",
    "Count": 1,
    "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}],
}


@pytest.mark.parametrize(("name", "profile", "job_cid", "task_cid"), PINNED)
def test_corpus_documents_keep_their_addresses(
    name: str, profile: str, job_cid: str, task_cid: str
) -> None:
    compiled = compile_path(CORPUS / name, profile=profile)
    assert (compiled.job_cid, compiled.task_cids) == (job_cid, {"main": task_cid})


@pytest.mark.parametrize(
    ("profile", "job_cid", "task_cid"),
    [
        (
            "klippfisk",
            "bagaaierazadn6bxptgzhxjz4nlkph5ftj242jfwsmvdvma27u5zmtpueakpa",
            "bagaaiera2ornn2hnivpkvgrrgqfklhwc4s7fn4k5q4eov7p4lsaixrkh7xvq",
        ),
        (
            "bacalhau",
            "bagaaieraz7y7zykuhwmah5gdx3sjdaircijl3sooaviynzthuntl3255i5kq",
            "bagaaieraqjnj3iphmznj5kl4zalk2c6dhmkfr4g2r5zicdqkpeyz55dqwhua",
        ),
    ],
)
def test_an_http_body_keeps_its_addresses_as_data_and_as_text(
    profile: str, job_cid: str, task_cid: str
) -> None:
    from_data = compile_job(HTTP_BODY, profile=profile)
    from_text = compile_document(
        b'{"Name": "bench-1", "Type": "batch", "Count": 1, "Tasks": [{"Name": "main", '
        b'"Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}]}',
        profile=profile,
    )
    for compiled in (from_data, from_text):
        assert (compiled.job_cid, compiled.task_cids) == (job_cid, {"main": task_cid})


@pytest.mark.parametrize(
    ("document", "job_cid", "task_cid"),
    [
        (
            b"image: ubuntu\ncommand: [echo, hi]\n",
            "bagaaieranxosjh6ilwha3jd77vihf2uyco55pzq23gf4kikrhs2lgdolyjhq",
            "bagaaiera3djrojcwjh4kdsupv7jjhpri7ghlki7n4aepi5bv443ma74opwwa",
        ),
        (
            b"language: python\ncode: print(1)\n",
            "bagaaierasvu4tuyfrmuuscdqp25syfn36vzsxmstyqhtfabbyxj2edi7tnaa",
            "bagaaiera6ywlebwboxbewlo2edvejv3kodoiz464wdons6duo7uhqvoqt3za",
        ),
    ],
)
def test_minimal_forms_keep_their_addresses(document: bytes, job_cid: str, task_cid: str) -> None:
    compiled = compile_document(document)
    assert (compiled.job_cid, compiled.task_cids) == (job_cid, {"main": task_cid})
