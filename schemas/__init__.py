"""The JSON Schemas generated from klippfisk.spec.models, shipped as package data.

`klippfisk spec schema` serves these files; `python3 -m klippfisk.spec.schema_export` writes them
and a test fails when they are stale.
"""
