"""The embedded default: a real Kafka broker and Redis server as child processes."""

from rendezvous.local.errors import LocalStackError, MissingTool
from rendezvous.local.stack import Endpoints, down, status, up

__all__ = ["Endpoints", "LocalStackError", "MissingTool", "down", "status", "up"]
