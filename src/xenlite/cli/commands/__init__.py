"""One module per verb group; each is imported only when one of its verbs runs."""
