"""The service window's side of a card tap: the agent at the window, its screen, the PC/SC
reader, the client of the hub, the writer that personalises a card, and the card itself (the
applet and its emulator). It speaks to the hub over HTTP only: no server service is imported
here, only the card's formats (hub.card.layout, hub.card.protocol) and the pure rules of a
decision (hub.verification.domain)."""
