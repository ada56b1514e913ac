"""Notifications out of the process: Glance's events to a message bus (oslo.messaging), never in a request's way."""
