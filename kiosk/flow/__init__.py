"""The verification flow: a pure state machine and the runner that executes its effects."""
