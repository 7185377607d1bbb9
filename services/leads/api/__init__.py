"""The leads service's HTTP API: thin routes over the application."""
