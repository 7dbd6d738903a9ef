"""`spark-ls model-server`: the embedded local model served over the Responses WebSocket protocol
(and HTTP SSE / Chat Completions), for other clients on this machine. Not a client library: the
model client (spark_ls.model) does not import it."""

from spark_ls.model_server.server import Backend, serve_model_server

__all__ = ["Backend", "serve_model_server"]
