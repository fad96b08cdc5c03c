"""Local fakes of external vendors that speak their real wire formats."""
