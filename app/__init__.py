"""Pinhole: a self-hosted photo-sharing server."""
