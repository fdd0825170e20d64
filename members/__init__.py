"""The loyalty side of the portal: members, segments, loyalty events and the messages they cause."""
