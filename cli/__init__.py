"""The ``backline`` command line: the stack supervisor plus an HTTP client of the API."""
