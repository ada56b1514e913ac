"""Glimpse: an image service speaking the OpenStack Images API v2."""
