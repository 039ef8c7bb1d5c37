"""c3n-bot: the messaging assistant of a collaborative chronic care network."""
