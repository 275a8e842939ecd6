"""The compiled-module cache: file digests stay bounded in a long-running worker."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from klippfisk.engine.executors.local.wasm_cache import ModuleCache, engine_config


def _module(export: str) -> bytes:
    return wasmtime.wat2wasm(f'(module (func (export "{export}")))')


def test_file_digests_stay_bounded_across_per_execution_paths(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path / "cache", max_file_digests=4)
    for index in range(12):  # as `serve` stages each execution's module at a new path
        staged = tmp_path / f"e-{index}" / "module.wasm"
        staged.parent.mkdir()
        staged.write_bytes(_module(f"f{index}"))
        cache.compiled(staged, fuel=False)

    assert cache.file_digest_count == 4


def test_a_file_rewritten_in_place_is_loaded_as_its_new_content(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path / "cache")
    engine = wasmtime.Engine(engine_config(fuel=False))
    path = tmp_path / "module.wasm"

    path.write_bytes(_module("aa"))
    first = wasmtime.Module.deserialize_file(engine, str(cache.compiled(path, fuel=False)))
    path.write_bytes(_module("bb"))
    second = wasmtime.Module.deserialize_file(engine, str(cache.compiled(path, fuel=False)))

    assert [e.name for e in first.exports] == ["aa"]
    assert [e.name for e in second.exports] == ["bb"]
