"""Cisco ECE asynchronous messaging: the client of the API profile in docs/protocols/ece.md."""
