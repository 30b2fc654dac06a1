"""Support for the tests, the benchmarks and the demo: which Kafka and Redis to run on
(:mod:`.stack`), topics read back (:mod:`.streams`), open-loop load (:mod:`.load`) and the
chaos run (:mod:`.chaos`)."""
