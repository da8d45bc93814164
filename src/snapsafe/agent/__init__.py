"""What runs inside every sandbox: the agent (main loop), its protocol, target loading and context."""
