"""What the gRPC doubles (Secret Manager, Pub/Sub) share: a model's refusal with a gRPC status,
the model's method of each call, and the handler that serves a model's unary calls, turning
that refusal into the call's status."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import grpc


class ModelError(Exception):
    """What a double's model raises to refuse a call: the status the service would answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def method_of(model: object, rpc: str) -> Callable[..., Any]:
    """The model's method serving ``rpc``: ``_create_secret`` for ``CreateSecret``."""
    method: Callable[..., Any] = getattr(model, "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", rpc).lower())
    return method


def unary_handler(service: str, rpcs: Mapping[str, tuple[Any, Callable[[Any], bytes]]],
                  dispatch: Callable[[str, Any, grpc.ServicerContext], Any]) -> grpc.GenericRpcHandler:
    """``service``'s unary calls (``rpc`` → (request message, response serializer)), each one
    ``dispatch(rpc, request, context)``; a ``ModelError`` aborts the call with its status."""

    def bind(rpc: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return dispatch(rpc, request, context)
            except ModelError as exc:
                context.abort(exc.code, exc.message)

        return handle

    return grpc.method_handlers_generic_handler(service, {
        rpc: grpc.unary_unary_rpc_method_handler(bind(rpc), request_deserializer=req.FromString,
                                                 response_serializer=serialize)
        for rpc, (req, serialize) in rpcs.items()
    })
