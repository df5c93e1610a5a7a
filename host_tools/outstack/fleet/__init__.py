"""The host side of the fleet (docs/FLEET.md): a local broker, simulated boards, the view of
the fleet from its retained messages, update transfers and staged rollouts."""
