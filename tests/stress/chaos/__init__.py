"""The chaos run's harness (kill -9 under load) and its report; ``bench/chaos.py`` is
its command line."""
