"""Conversation flows (issue 16): what happens between the rule and the entry point.

`definition` is what an operator provisions, `engine` the state machine that runs inside the drain,
`answers` how an `ask` step's answer is validated. The drain applies the engine's actions in
connector/relay/flow_turn.py.
"""
