"""Shared pytest configuration for the collection's unit tests (run by hack/unit.sh).

hack/unit.sh puts a tree on PYTHONPATH in which this repository is importable as
``ansible_collections.kubedebug.ephemeral``; unit tests import plugin code from there.
"""
