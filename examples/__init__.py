"""The example jobs the README names, shipped with the package.

`klippfisk job run --example hello` runs hello.yaml from here after any install.
"""
