"""``rendezvous serve``: the Kafka runner around :mod:`rendezvous.core`.

It polls, decodes, calls the core, encodes and produces; every decision rule
lives in the core.
"""
