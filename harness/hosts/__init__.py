"""The hosts a run over SSH will use: whether each can be reached and has what the harness needs
there (``walrus-harness hosts check``)."""
