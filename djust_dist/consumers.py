"""Public import path of the Channels consumer."""

from djust_dist.transport.consumer import LiveViewConsumer

__all__ = ["LiveViewConsumer"]
