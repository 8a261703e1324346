"""Tests of the conversation flows (connector/flows/): one module per module."""
