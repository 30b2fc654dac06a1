"""``rendezvous serve``: source -> decode -> core -> encode -> sink, around :mod:`rendezvous.core`.

:mod:`.loop` polls a source, decodes, calls the core, encodes and writes to a
sink (:mod:`.ports`); every decision rule lives in the core. Kafka is one pair of
source and sink (:mod:`.kafka`; :mod:`.publisher` by default, :mod:`.committer`
with transactions), wired by :mod:`.runner`; memory is another (:mod:`.memory`),
for tests with no broker.
"""
