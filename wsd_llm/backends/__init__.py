"""Model backends: what runs the draft and the base."""
