"""Members, segments, loyalty events and messages arrive with the Attentive and segments work (issues 3 and 4)."""
