"""``rendezvous inspect``: one request's story, read back from the topics or the archive.

- :mod:`~rendezvous.inspect.window`: the time range searched (``--since``/``--until``).
- :mod:`~rendezvous.inspect.topics`: time-bounded reads of the pipeline's topics.
- :mod:`~rendezvous.inspect.archive`: the decoy's Parquet archive, row group by row group.
- :mod:`~rendezvous.inspect.control`: the policy in force at a given time.
- :mod:`~rendezvous.inspect.story`: the records of one request turned into its story.
- :mod:`~rendezvous.inspect.render`: the story as text lines or JSON.
- :mod:`~rendezvous.inspect.run`: what the command does, in order.
"""

from rendezvous.inspect.errors import InspectError
from rendezvous.inspect.run import Inspection, inspect_request

__all__ = ["InspectError", "Inspection", "inspect_request"]
