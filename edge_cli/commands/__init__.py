"""One module per `edge` subcommand; each has `register(app)`."""
